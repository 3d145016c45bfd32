"""Calls requested but not indexed: the batches that failed, and what is still pending from them.

A batch run that fails (the LLM or the STT went away after the step retries) is requested again
by ``failed_batches_sensor`` (sensors.py), a few times; the calls of runs that did not succeed
and are still not in the index are what ``requested_calls_indexed`` reports as pending.
They are written to the call index's calls not indexed yet (state pending), where the call
browser lists them; indexing a call clears its row. Call ids and counts only: no words of a
call, no phone numbers.
"""

from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg

from callindex import UnindexedCall, UnindexedState
from orchestration.defs.postcall.assets import call_index
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.resources import CallIndexResource

POSTCALL_JOB_NAME = "postcall_calls"
# A run in flight holds its calls this long before they count as overdue.
PENDING_GRACE = timedelta(minutes=30)
PENDING_LOOKBACK = timedelta(days=7)  # the nightly reconcile's reach
NOT_SUCCEEDED = [
    dg.DagsterRunStatus.FAILURE,
    dg.DagsterRunStatus.CANCELED,
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def requested_calls(run_config: dict) -> list[CallRef]:
    """The calls a postcall run was asked to process; none for a whole-day (reconcile) run."""
    keys = run_config.get("ops", {}).get("call_transcripts", {}).get("config", {}).get("calls", [])
    return [CallRef.parse(k) for k in keys]


def _why(requested_at: datetime, run_status: str) -> str:
    return f"requested {requested_at:%Y-%m-%d %H:%M} UTC, run {run_status.lower()}"


@dg.asset_check(
    asset=call_index,
    name="requested_calls_indexed",
    description="calls of postcall runs that did not succeed (failed, cancelled, in flight) in the last 7 days and "
    "are still not in the index: pending; fails when one has waited longer than 30 minutes",
)
def requested_calls_indexed(
    context: dg.AssetCheckExecutionContext, call_index_store: CallIndexResource
) -> dg.AssetCheckResult:
    now = datetime.now(UTC)
    records = context.instance.get_run_records(
        filters=dg.RunsFilter(job_name=POSTCALL_JOB_NAME, statuses=NOT_SUCCEEDED, created_after=now - PENDING_LOOKBACK)
    )
    requested: dict[CallRef, tuple[datetime, str]] = {}  # the earliest request of each call
    for record in sorted(records, key=lambda r: r.create_timestamp):
        for ref in requested_calls(record.dagster_run.run_config):
            requested.setdefault(ref, (record.create_timestamp, record.dagster_run.status.value))
    pending: dict[CallRef, tuple[datetime, str]] = {}
    if requested:
        index = call_index_store.open()
        try:
            for ref, request in requested.items():
                stored = index.get(ref.call_id)
                if stored is None or (stored.source_generation or 0) < ref.generation:
                    pending[ref] = request
            # Where the browser shows them (an unreadable report found meanwhile stays unreadable).
            index.mark_unindexed(
                UnindexedCall(
                    call_id=ref.call_id,
                    day=ref.day,
                    state=UnindexedState.PENDING,
                    reason=_why(at, status),
                    since=at,
                    generation=ref.generation,
                )
                for ref, (at, status) in pending.items()
            )
        finally:
            index.close()
    overdue = {ref for ref, (at, _) in pending.items() if now - at > PENDING_GRACE}
    oldest = min((at for at, _ in pending.values()), default=None)
    listed = sorted(pending.items(), key=lambda item: item[1][0])[:50]
    return dg.AssetCheckResult(
        passed=not overdue,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "pending_calls": len(pending),
            "overdue_calls": len(overdue),
            "oldest_pending_minutes": round((now - oldest).total_seconds() / 60, 1) if oldest else 0.0,
            "pending_by_day": dg.MetadataValue.json(dict(Counter(ref.day.isoformat() for ref in pending))),
            "pending": dg.MetadataValue.json({ref.call_id: _why(at, status) for ref, (at, status) in listed}),
        },
    )
