"""call.analyzed: recorded when post-call's ``call_index`` has indexed a day's calls.

An asset sensor on ``call_index`` reads the materialised day's rows back from the call index
(the one home of indexed calls) and records one event per call and report generation, so a
partition materialised twice announces nothing twice, and a re-processed report (a newer
generation) is announced again. The payload carries ids, outcome and the analysis labels; never
the numbers, the transcript, the summary or extracted fields (they may hold what was said).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import dagster as dg

from callcenter.record import CallRecord
from callindex.api import MAX_PAGE_SIZE, CallFilter
from orchestration.defs.dialing.ledger import DialStore
from orchestration.defs.dialing.resources import DialLedgerStore
from orchestration.defs.postcall.resources import CallIndexResource
from orchestration.defs.webhooks.outbox import EventType, record_event


def analyzed_data(record: CallRecord) -> dict:
    analysis = record.analysis
    return {
        "call_id": record.call_id,
        "direction": record.direction.value,
        "campaign_id": record.campaign_id,
        "contact_id": record.contact_id,
        "attempt_id": record.attempt_id,
        "persona": record.persona,
        "outcome": record.outcome.value,
        "do_not_call_requested": record.do_not_call_requested,
        "started_at": record.started_at.isoformat(),
        "ended_at": record.ended_at.isoformat(),
        "duration_s": record.duration_s,
        "analysis_status": record.analysis_status.value,
        "sentiment": analysis.sentiment.value if analysis else None,
        "disposition": analysis.disposition if analysis else None,
        "follow_up_needed": analysis.follow_up_needed if analysis else None,
        "goal_achieved": analysis.goal_achieved if analysis else None,
        # who wrote the analysis: "llm:<model>", or "extractive" (rules over the redacted transcript, no model)
        "analyser": analysis.analyser if analysis else None,
    }


def record_analyzed(store: DialStore, records: Iterable[CallRecord], at: datetime) -> list[str]:
    """One call.analyzed per (call, report generation); returns the new message ids."""
    recorded = []
    for record in records:
        key = f"call.analyzed/{record.call_id}/{record.source_generation or 0}"
        if (mid := record_event(store, EventType.CALL_ANALYZED, analyzed_data(record), key, at)) is not None:
            recorded.append(mid)
    return recorded


def day_records(index_store: CallIndexResource, day_start: datetime) -> list[CallRecord]:
    index = index_store.open()
    try:
        filters = CallFilter(started_from=day_start, started_to=day_start + timedelta(days=1))
        records, offset = [], 0
        while True:
            page = index.list_calls(filters, limit=MAX_PAGE_SIZE, offset=offset, count_limit=0)
            records += page.items
            if len(page.items) < MAX_PAGE_SIZE:
                return records
            offset += MAX_PAGE_SIZE
    finally:
        index.close()


@dg.asset_sensor(
    asset_key=dg.AssetKey("call_index"),
    name="call_analyzed_webhooks",
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Records call.analyzed for every call a call_index materialisation indexed (docs/webhooks.md).",
)
def call_analyzed_webhooks(
    context: dg.SensorEvaluationContext,
    asset_event: dg.EventLogEntry,
    dial_ledger_store: DialLedgerStore,
    call_index_store: CallIndexResource,
) -> dg.SkipReason:
    partition = asset_event.dagster_event.partition if asset_event.dagster_event else None
    if not partition:
        return dg.SkipReason("call_index materialised without a partition: nothing to announce")
    day = datetime.strptime(partition, "%Y-%m-%d").replace(tzinfo=UTC)
    records = day_records(call_index_store, day)
    with dial_ledger_store.open() as store:
        recorded = record_analyzed(store, records, datetime.now(UTC))
    return dg.SkipReason(f"{partition}: {len(recorded)} call.analyzed recorded ({len(records)} calls indexed that day)")


defs = dg.Definitions(sensors=[call_analyzed_webhooks])
