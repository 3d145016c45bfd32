"""A callback the caller accepted (a warm transfer found nobody: agent/warm_transfer.py) schedules
the contact's next attempt at the time they asked for, inside the calling window, once.

Before: the call closed as ANSWERED, a final outcome, and the contact was never called again."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

import pytest

from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import report_path
from callcenter.report import SessionReport, TransferStep, TransferStepName
from doubles.livekit_server import LiveKitDouble
from orchestration.defs.dialing.ledger import DialStore
from orchestration.defs.dialing.outcomes import apply_report, callback_mark
from tests.dialing.conftest import FakeClock, campaign, catalog, lk_client, make_tick, ny_contacts

pytestmark = pytest.mark.timeout(60)


def callback_report(
    bucket,  # noqa: ANN001
    call_id: str,
    ended_at: datetime,
    when: datetime | Literal["asap"],
    *,
    do_not_call: bool = False,
    direction: CallDirection = CallDirection.OUTBOUND,
) -> SessionReport:
    """The agent's report of an answered call whose transfer found nobody and whose caller accepted a callback."""
    started = ended_at - timedelta(minutes=3)
    report = SessionReport(
        call_id=call_id,
        room=call_id,
        direction=direction,
        from_number="+12125550199" if direction is CallDirection.INBOUND else None,
        started_at=started,
        answered_at=started + timedelta(seconds=4),
        agent_first_spoke_at=started + timedelta(seconds=5),
        ended_at=ended_at,
        outcome=CallOutcome.ANSWERED,
        do_not_call_requested=do_not_call,
        transfer_steps=[
            TransferStep(step=s, at=started + timedelta(seconds=60 + i), detail="sip 480" if s == "failed" else None)
            for i, s in enumerate(["hold_started", "dialled", "failed", "returned_to_caller"])
        ],
        callback_requested=when,
    )
    if bucket is not None:
        bucket.write_bytes(report_path(call_id), report.model_dump_json().encode(), "application/json")
    return report


async def test_the_next_attempt_waits_for_the_callback_time_and_is_made_once(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign()
    store.replace_contacts(camp.id, ny_contacts(1))
    # tomorrow 10:00 in New York, inside the 08:00-21:00 window
    when = clock.now + timedelta(days=1)
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        await tick.run()
        (first,) = store.attempts()
        clock.advance(timedelta(minutes=4))
        callback_report(bucket, first.call_id, clock.now, when)

        clock.advance(timedelta(minutes=1))
        result = await tick.run()  # closes the attempt, schedules the callback, dials nobody
        assert store.attempt_by_call(first.call_id).outcome is CallOutcome.ANSWERED
        assert result.sweep.callbacks == [first.call_id]
        assert store.mark(callback_mark(camp.id, "c-0001", 1)) == when
        assert len(store.attempts()) == 1

        clock.now = when - timedelta(minutes=1)
        await tick.run()
        assert len(store.attempts()) == 1  # not before the time asked for

        clock.now = when + timedelta(minutes=1)
        await tick.run()
        first_again, second = store.attempts()
        assert second.contact_id == "c-0001" and second.attempt_number == 2

        # the callback is answered and ends normally: nobody is called a third time
        clock.advance(timedelta(minutes=3))
        from tests.dialing.conftest import write_report

        write_report(bucket, second.call_id, CallOutcome.ANSWERED, clock.now)
        for _ in range(2):
            clock.advance(timedelta(hours=1))
            await tick.run()
        assert len(store.attempts()) == 2


async def test_a_callback_asked_for_outside_the_window_waits_for_the_window(
    sqlite_store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign()
    sqlite_store.replace_contacts(camp.id, ny_contacts(1))
    when = clock.now + timedelta(hours=13)  # 23:00 in New York; the window is 08:00-21:00
    async with lk_client(livekit_double) as lk:
        tick = make_tick(sqlite_store, catalog(camp), lk, bucket, clock)
        await tick.run()
        (first,) = sqlite_store.attempts()
        callback_report(bucket, first.call_id, clock.now + timedelta(minutes=3), when)
        clock.now = when + timedelta(minutes=1)
        await tick.run()
        assert len(sqlite_store.attempts()) == 1  # 23:01 in New York: outside the window
        clock.now = when + timedelta(hours=9, minutes=1)  # 08:01 in New York
        await tick.run()
        assert len(sqlite_store.attempts()) == 2


async def test_asap_dials_at_the_next_tick_but_never_a_number_that_asked_not_to_be_called(
    sqlite_store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign()
    sqlite_store.replace_contacts(camp.id, ny_contacts(2))
    async with lk_client(livekit_double) as lk:
        tick = make_tick(sqlite_store, catalog(camp), lk, bucket, clock)
        await tick.run()
        a, b = sqlite_store.attempts()
        clock.advance(timedelta(minutes=3))
        callback_report(bucket, a.call_id, clock.now, "asap")
        callback_report(bucket, b.call_id, clock.now, "asap", do_not_call=True)
        clock.advance(timedelta(minutes=1))
        await tick.run()  # closes both; a's callback is due at the end of its call
        clock.advance(timedelta(minutes=1))
        await tick.run()
        redialled = [x.contact_id for x in sqlite_store.attempts() if x.attempt_number == 2]
        assert redialled == [a.contact_id]
        assert sqlite_store.mark(callback_mark(camp.id, b.contact_id, 1)) is None


def test_an_inbound_callback_has_no_campaign_to_dial_from(
    sqlite_store: DialStore, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    from callcenter.ids import new_call_id

    report = callback_report(None, new_call_id(), clock.now, "asap", direction=CallDirection.INBOUND)
    assert apply_report(sqlite_store, report, clock.now) is False
    assert "no campaign dialled" in caplog.text
    assert sqlite_store.marks("callback/") == {}
    assert report.transfer_steps[2].step is TransferStepName.FAILED
