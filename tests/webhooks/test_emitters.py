"""Where the facts are known: dialing's controls and ticks record campaign events, post-call's
call_index materialisations record call.analyzed; ids and outcomes only, each fact once."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from callcenter.ids import new_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.record import CallRecord
from doubles.livekit_server import LiveKitDouble
from orchestration.defs.dialing.controls import ControlAction, apply_control
from orchestration.defs.dialing.ledger import AttemptStatus, DialStore, SqliteDialStore
from orchestration.defs.dialing.resources import DialLedgerStore
from orchestration.defs.postcall.resources import CallIndexResource
from orchestration.defs.webhooks.analyzed import call_analyzed_webhooks, record_analyzed
from orchestration.defs.webhooks.outbox import migrate
from tests.dialing.conftest import FakeClock, campaign, catalog, lk_client, make_tick, ny_contacts, write_report


def messages(store: DialStore) -> list[tuple[str, dict]]:
    migrate(store)
    with store.transaction() as cur:
        rows = store._exec(
            cur, "SELECT event_type, body FROM webhook_messages ORDER BY created_at, message_id"
        ).fetchall()
    return [(r[0], json.loads(r[1])["data"]) for r in rows]


def test_pause_and_stop_record_campaign_events_resume_does_not(store: DialStore, clock: FakeClock) -> None:
    now = clock()
    apply_control(store, "spring", ControlAction.PAUSE, "complaint review", now)
    apply_control(store, "spring", ControlAction.RESUME, "operator", now + timedelta(minutes=1))
    apply_control(store, "spring", ControlAction.STOP, "season over", now + timedelta(minutes=2))
    (paused, paused_data), (finished, finished_data) = messages(store)
    assert (paused, finished) == ("campaign.paused", "campaign.finished")
    assert paused_data["campaign_id"] == "spring" and paused_data["reason"] == "complaint review"
    assert finished_data["reason"] == "stopped" and finished_data["detail"] == "season over"


async def test_a_tick_that_finds_every_contact_settled_records_campaign_finished_once(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=5)
    store.replace_contacts(camp.id, ny_contacts(2))
    async with lk_client(livekit_double) as lk:
        await make_tick(store, catalog(camp), lk, bucket, clock).run()
        assert messages(store) == []  # calls in progress: not finished
        attempts = store.attempts()
        write_report(bucket, attempts[0].call_id, CallOutcome.ANSWERED, clock())
        for a in attempts:
            livekit_double.rooms.pop(a.call_id, None)
            livekit_double.dispatches.pop(a.call_id, None)
        clock.advance(timedelta(minutes=1))
        await make_tick(store, catalog(camp), lk, bucket, clock).run()
        assert messages(store) == []  # one report still missing: its outcome may retry the contact
        write_report(bucket, attempts[1].call_id, CallOutcome.DO_NOT_CALL, clock(), do_not_call=True)
        clock.advance(timedelta(minutes=1))
        await make_tick(store, catalog(camp), lk, bucket, clock).run()
        clock.advance(timedelta(minutes=1))
        await make_tick(store, catalog(camp), lk, bucket, clock).run()  # still finished: not announced again

    ((event, data),) = messages(store)
    assert event == "campaign.finished"
    assert data["campaign_id"] == camp.id and data["reason"] == "completed" and data["contacts"] == 2
    assert data["outcomes"] == {"answered": 1, "do_not_call": 1}
    body = json.dumps(data)
    assert "+1" not in body and "Contact 1" not in body  # no numbers, no names


def indexed_call(call_id: str, generation: int) -> CallRecord:
    started = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
    return CallRecord.model_validate(
        {
            "call_id": call_id,
            "direction": CallDirection.OUTBOUND,
            "campaign_id": "spring",
            "contact_id": "c-0001",
            "from_number": "+12125550100",
            "to_number": "+12125550123",
            "started_at": started,
            "ended_at": started + timedelta(seconds=90),
            "outcome": CallOutcome.ANSWERED,
            "duration_s": 90.0,
            "transcript": [{"speaker": "caller", "text": "my card is 4111 1111 1111 1111", "start": 1.0, "end": 2.0}],
            "source_generation": generation,
            "processed_at": started + timedelta(minutes=5),
        }
    )


def test_call_analyzed_is_recorded_per_report_generation_without_pii(sqlite_store: DialStore) -> None:
    at, call_id = datetime.now(UTC), new_call_id(datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
    assert len(record_analyzed(sqlite_store, [indexed_call(call_id, 1)], at)) == 1
    assert record_analyzed(sqlite_store, [indexed_call(call_id, 1)], at) == []  # the day re-materialised
    assert len(record_analyzed(sqlite_store, [indexed_call(call_id, 2)], at)) == 1  # a re-processed report
    (_, data), _ = messages(sqlite_store)
    assert data["outcome"] == "answered" and data["campaign_id"] == "spring" and data["analysis_status"] == "skipped"
    body = json.dumps(data)
    assert "555" not in body and "4111" not in body and "card" not in body


def test_the_sensor_reads_the_materialised_day_from_the_call_index(tmp_path) -> None:
    index_store = CallIndexResource(data_dir=str(tmp_path))
    index = index_store.open()
    try:
        call_id = new_call_id(datetime(2026, 12, 3, 15, 0, tzinfo=UTC))
        index.upsert(indexed_call(call_id, 1), [0.1] * 384)
    finally:
        index.close()
    ledger = DialLedgerStore(data_dir=str(tmp_path))
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key="call_index", partition="2026-12-03"))
    event = instance.get_latest_materialization_event(dg.AssetKey("call_index"))
    context = dg.build_sensor_context(
        instance=instance, resources={"dial_ledger_store": ledger, "call_index_store": index_store}
    )
    result = call_analyzed_webhooks.evaluate_tick(context)
    assert event is not None
    assert "1 call.analyzed recorded" in (result.skip_message or "")
    store = SqliteDialStore(tmp_path / "dialing" / "ledger.sqlite3")
    try:
        ((event_type, data),) = messages(store)
    finally:
        store.close()
    assert event_type == "call.analyzed" and data["call_id"] == call_id


async def test_a_slot_freed_by_room_finished_is_dialled_by_the_next_tick_before_any_report(
    store: DialStore, livekit_double: LiveKitDouble, clock: FakeClock
) -> None:
    """Capacity 1: the second contact waits for the first call's slot. room_finished frees it
    (what the webhook service does), so the next tick dials without the first call's report;
    the first contact is not dialled again while its outcome is unknown."""
    camp = campaign(max_concurrent_calls=1)
    store.replace_contacts(camp.id, ny_contacts(2))
    async with lk_client(livekit_double) as lk:
        first = await make_tick(store, catalog(camp), lk, None, clock).run()
        assert first.dialed[camp.id] == 1
        (attempt,) = store.attempts()
        livekit_double.rooms.pop(attempt.call_id, None)  # the call is over; no report yet
        livekit_double.dispatches.pop(attempt.call_id, None)
        clock.advance(timedelta(minutes=1))
        blocked = await make_tick(store, catalog(camp), lk, None, clock).run()
        assert blocked.dialed[camp.id] == 0  # without the webhook: the slot waits for the report
        assert store.mark_ended(attempt.call_id, "room finished (LiveKit room_finished)")
        clock.advance(timedelta(minutes=1))
        freed = await make_tick(store, catalog(camp), lk, None, clock).run()
    assert freed.dialed[camp.id] == 1
    by_contact = {a.contact_id: a.status for a in store.attempts()}
    assert by_contact == {"c-0001": AttemptStatus.ENDED, "c-0002": AttemptStatus.DISPATCHED}
