"""Closing attempts from session reports: abandonment, missing reports, gs:// contact lists."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from callcenter.campaign import CampaignFile
from callcenter.ids import new_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.report import SessionReport, Turn
from doubles.livekit_server import LiveKitDouble
from orchestration.defs.dialing.assets import fetch_contact_list
from orchestration.defs.dialing.ledger import AttemptStatus, DialStore
from orchestration.defs.dialing.outcomes import is_abandoned, sweep_outcomes
from tests.dialing.conftest import (
    WEDNESDAY_15Z,
    FakeClock,
    campaign,
    catalog,
    lk_client,
    make_tick,
    ny_contacts,
    write_report,
)


def report(
    outcome: CallOutcome, answered_after_s: float | None, agent_first_s: float | None, exact: bool
) -> SessionReport:
    """A report answered ``answered_after_s`` into the call whose agent first spoke ``agent_first_s`` after the answer."""
    started = WEDNESDAY_15Z
    answered = None if answered_after_s is None else started + timedelta(seconds=answered_after_s)
    turns = [Turn(speaker="caller", text="Hello?", start=0.2, end=0.8)] if answered else []
    if agent_first_s is not None:
        turns.append(Turn(speaker="agent", text="Hi, this is Jade.", start=agent_first_s, end=agent_first_s + 2))
    return SessionReport(
        call_id=new_call_id(),
        room="r",
        direction=CallDirection.OUTBOUND,
        started_at=started,
        answered_at=answered,
        agent_first_spoke_at=answered + timedelta(seconds=agent_first_s)
        if exact and answered and agent_first_s is not None
        else None,
        ended_at=started + timedelta(minutes=1),
        outcome=outcome,
        turns=turns,
    )


@pytest.mark.parametrize("exact", [True, False], ids=["agent_first_spoke_at", "turns"])
@pytest.mark.parametrize(
    ("outcome", "answered_after", "agent_first", "abandoned"),
    [
        (CallOutcome.ANSWERED, 6.0, 1.5, False),
        (CallOutcome.ANSWERED, 6.0, 2.5, True),  # 2.5 s of silence after "Hello?": abandoned
        (CallOutcome.ANSWERED, 6.0, None, True),  # the agent never spoke
        (CallOutcome.TRANSFERRED, 0.0, 1.9, False),
        (CallOutcome.VOICEMAIL, 6.0, 3.0, None),  # a machine answered: not an abandonment
        (CallOutcome.NO_ANSWER, None, None, None),
    ],
)
def test_abandonment_is_agent_silence_over_two_seconds_after_answer(
    outcome, answered_after, agent_first, abandoned, exact
) -> None:
    assert is_abandoned(report(outcome, answered_after, agent_first, exact)) is abandoned


def test_the_absolute_time_wins_over_turns_clamped_by_a_late_recording() -> None:
    r = report(CallOutcome.ANSWERED, 6.0, 0.0, exact=False)  # greeting before the recording: clamped to 0
    late = r.model_copy(update={"agent_first_spoke_at": r.answered_at + timedelta(seconds=3)})
    assert is_abandoned(r) is False and is_abandoned(late) is True


async def test_abandonment_rate_reaches_the_ledger(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=4)
    store.replace_contacts(camp.id, ny_contacts(4))
    async with lk_client(livekit_double) as lk:
        await make_tick(store, catalog(camp), lk, bucket, clock).run()
    a, b, c, d = store.attempts()
    write_report(bucket, a.call_id, CallOutcome.ANSWERED, clock.now, first_agent_turn_s=0.5)
    write_report(bucket, b.call_id, CallOutcome.ANSWERED, clock.now, first_agent_turn_s=3.0)
    write_report(bucket, c.call_id, CallOutcome.VOICEMAIL, clock.now, answered=True)
    write_report(bucket, d.call_id, CallOutcome.NO_ANSWER, clock.now, sip_status_code=480)
    from orchestration.defs.dialing.assets import bucket_reader

    sweep = sweep_outcomes(store, bucket_reader(bucket), clock.now, timedelta(hours=2))
    assert sweep.closed == {"answered": 2, "voicemail": 1, "no_answer": 1}
    assert store.abandonment(camp.id, clock.now - timedelta(days=30)) == (1, 2)


def test_an_attempt_whose_report_never_comes_is_closed_after_max_call_duration(
    store: DialStore, clock: FakeClock
) -> None:
    from orchestration.defs.dialing.ledger import Attempt, attempt_key

    call_id = new_call_id()
    store.reserve(
        Attempt(
            f"att-{call_id[5:]}",
            attempt_key("renewals", "c-0001", 1),
            "renewals",
            "c-0001",
            1,
            "+12125550001",
            call_id,
            AttemptStatus.RESERVED,
            clock.now,
        )
    )
    store.mark_dispatched(f"att-{call_id[5:]}", "AD_1", clock.now)
    assert (
        sweep_outcomes(store, lambda _n: None, clock.now + timedelta(minutes=119), timedelta(hours=2)).timed_out == []
    )
    late = sweep_outcomes(store, lambda _n: None, clock.now + timedelta(minutes=121), timedelta(hours=2))
    assert late.timed_out == [call_id]
    row = store.attempt_by_call(call_id)
    assert row.outcome is CallOutcome.FAILED and "no session report" in row.note
    assert store.live_counts() == {}


def test_contact_lists_are_read_from_a_bucket(bucket) -> None:
    bucket.write_bytes("lists/renewals.csv", b"contact_id,phone_number\ng1,+12125550161\ng2,nonsense\n", "text/csv")
    camp = campaign(contacts=f"gs://{bucket.bucket_name}/lists/renewals.csv")
    lst = fetch_contact_list(CampaignFile(campaign=camp, path=Path("/campaigns/renewals.yaml")), bucket)
    assert [c.phone_number for c in lst.contacts] == ["+12125550161"]
    assert [r.contact_id for r in lst.invalid] == ["g2"]


@pytest.mark.parametrize(
    ("sip", "closed_as"),
    [(486, CallOutcome.BUSY), (480, CallOutcome.NO_ANSWER), (404, CallOutcome.WRONG_NUMBER), (503, CallOutcome.FAILED)],
)
async def test_a_generic_failure_takes_its_sip_status_outcome(
    sqlite_store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock, sip: int, closed_as: CallOutcome
) -> None:
    camp = campaign()
    sqlite_store.replace_contacts(camp.id, ny_contacts(1))
    async with lk_client(livekit_double) as lk:
        await make_tick(sqlite_store, catalog(camp), lk, bucket, clock).run()
    (a,) = sqlite_store.attempts()
    write_report(bucket, a.call_id, CallOutcome.FAILED, clock.now, sip_status_code=sip)
    from orchestration.defs.dialing.assets import bucket_reader

    sweep_outcomes(sqlite_store, bucket_reader(bucket), clock.now, timedelta(hours=2))
    assert sqlite_store.attempt_by_call(a.call_id).outcome is closed_as
