"""Planning a tick: suppression, attempts, backoff per outcome, capacity, controls."""

from __future__ import annotations

from datetime import timedelta

import pytest

from callcenter.outcomes import CallOutcome
from orchestration.defs.dialing.ledger import CampaignState, ContactHistory
from orchestration.defs.dialing.planner import Capacity, SkipReason, plan_tick
from tests.dialing.conftest import WEDNESDAY_15Z, campaign, ny_contacts

ROOMY = Capacity(campaign_limit=100, campaign_live=0, global_limit=100, global_live=0)


def plan(
    contacts,
    *,
    history=None,
    dnc=frozenset(),
    state=CampaignState.ACTIVE,
    capacity=ROOMY,
    now=WEDNESDAY_15Z,
    abandonment=(0, 0),
    **camp,
):
    return plan_tick(
        campaign(**camp),
        contacts,
        now=now,
        state=state,
        do_not_call=dnc,
        history=history or {},
        capacity=capacity,
        abandonment=abandonment,
    )


def reasons(p) -> dict[str, str]:
    return {s.contact_id: s.reason for s in p.skipped}


def test_do_not_call_numbers_are_suppressed() -> None:
    contacts = ny_contacts(3)
    p = plan(contacts, dnc={contacts[1].phone_number})
    assert [s.contact.contact_id for s in p.selected] == ["c-0001", "c-0003"]
    assert reasons(p) == {"c-0002": SkipReason.DO_NOT_CALL}


@pytest.mark.parametrize(
    ("outcome", "backoff"),
    [
        (CallOutcome.BUSY, timedelta(minutes=15)),
        (CallOutcome.NO_ANSWER, timedelta(hours=2)),
        (CallOutcome.VOICEMAIL, timedelta(hours=24)),
        (CallOutcome.FAILED, timedelta(minutes=30)),
    ],
)
def test_each_retryable_outcome_waits_its_own_backoff(outcome: CallOutcome, backoff: timedelta) -> None:
    contacts = ny_contacts(1)
    closed = WEDNESDAY_15Z - backoff + timedelta(minutes=1)
    history = {"c-0001": ContactHistory(attempts=1, open=False, last_outcome=outcome, last_closed_at=closed)}
    waiting = plan(contacts, history=history)
    assert reasons(waiting) == {"c-0001": SkipReason.BACKOFF}
    due = plan(contacts, history=history, now=WEDNESDAY_15Z + timedelta(minutes=1))
    assert [(s.contact.contact_id, s.attempt_number) for s in due.selected] == [("c-0001", 2)]


def test_backoff_comes_from_the_campaign() -> None:
    history = {"c-0001": ContactHistory(1, False, CallOutcome.BUSY, WEDNESDAY_15Z - timedelta(minutes=3))}
    assert plan(ny_contacts(1), history=history, retry_backoff={"busy": "PT2M"}).selected
    # An outcome left out of retry_backoff is final for that campaign.
    assert reasons(plan(ny_contacts(1), history=history, retry_backoff={"no_answer": "PT1H"})) == {
        "c-0001": SkipReason.COMPLETED
    }


@pytest.mark.parametrize(
    "outcome",
    [
        CallOutcome.ANSWERED,
        CallOutcome.DECLINED,
        CallOutcome.WRONG_NUMBER,
        CallOutcome.DO_NOT_CALL,
        CallOutcome.TRANSFERRED,
    ],
)
def test_final_outcomes_are_never_redialled(outcome: CallOutcome) -> None:
    history = {"c-0001": ContactHistory(1, False, outcome, WEDNESDAY_15Z - timedelta(days=3))}
    assert reasons(plan(ny_contacts(1), history=history)) == {"c-0001": SkipReason.COMPLETED}


def test_max_attempts_and_open_attempts() -> None:
    history = {
        "c-0001": ContactHistory(3, False, CallOutcome.NO_ANSWER, WEDNESDAY_15Z - timedelta(days=1)),
        "c-0002": ContactHistory(1, True, None, None),
    }
    p = plan(ny_contacts(3), history=history, max_attempts=3)
    assert reasons(p) == {"c-0001": SkipReason.MAX_ATTEMPTS, "c-0002": SkipReason.IN_FLIGHT}
    assert [s.contact.contact_id for s in p.selected] == ["c-0003"]


def test_window_and_unknown_zone_reasons() -> None:
    contacts = ny_contacts(1) + ny_contacts(1, start=2, zone="America/Los_Angeles")  # 10:00 and 07:00 local
    contacts.append(ny_contacts(1, start=3)[0].__class__("c-0003", "+80012345678", None, (), "number"))
    r = reasons(plan(contacts))
    assert r == {"c-0002": SkipReason.OUTSIDE_CALLING_WINDOW, "c-0003": SkipReason.TIME_ZONE_UNKNOWN}


def test_capacity_is_the_tighter_of_campaign_and_global() -> None:
    contacts = ny_contacts(10)
    by_campaign = plan(contacts, capacity=Capacity(campaign_limit=4, campaign_live=1, global_limit=50, global_live=0))
    assert len(by_campaign.selected) == 3
    by_fleet = plan(contacts, capacity=Capacity(campaign_limit=10, campaign_live=0, global_limit=8, global_live=6))
    assert len(by_fleet.selected) == 2
    assert sum(1 for s in by_fleet.skipped if s.reason == SkipReason.CAPACITY) == 8
    full = plan(contacts, capacity=Capacity(campaign_limit=10, campaign_live=0, global_limit=8, global_live=9))
    assert full.selected == [] and full.capacity.free == 0


def test_first_attempts_go_before_retries() -> None:
    history = {"c-0001": ContactHistory(1, False, CallOutcome.BUSY, WEDNESDAY_15Z - timedelta(hours=1))}
    p = plan(ny_contacts(3), history=history, capacity=Capacity(2, 0, 100, 0))
    assert [s.contact.contact_id for s in p.selected] == ["c-0002", "c-0003"]


@pytest.mark.parametrize(
    ("state", "reason"),
    [(CampaignState.PAUSED, SkipReason.CAMPAIGN_PAUSED), (CampaignState.STOPPED, SkipReason.CAMPAIGN_STOPPED)],
)
def test_paused_or_stopped_campaigns_dial_nobody(state: CampaignState, reason: SkipReason) -> None:
    p = plan(ny_contacts(4), state=state)
    assert p.selected == [] and set(reasons(p).values()) == {reason}


def test_abandonment_over_three_percent_blocks_the_campaign() -> None:
    assert plan(ny_contacts(2), abandonment=(1, 40)).selected  # 2.5%
    blocked = plan(ny_contacts(2), abandonment=(2, 40))  # 5%
    assert blocked.selected == [] and set(reasons(blocked).values()) == {SkipReason.ABANDONMENT_LIMIT}
    assert plan(ny_contacts(2), abandonment=(2, 10)).selected  # too few calls to judge


def test_explanation_names_each_reason() -> None:
    p = plan(ny_contacts(3), dnc={"+12125550002"}, capacity=Capacity(1, 0, 100, 0))
    text = p.explain()
    assert "dial c-0001" in text and "do_not_call" in text and "capacity" in text
