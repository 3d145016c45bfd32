"""Crash recovery: the attempts a run left ``reserved`` or ``sending``, settled by the next tick.

A ``reserved`` row (the run died before sending) is looked for in LiveKit (a dispatch or a
room under its call id) and in the bucket (its session report): found, it is marked
dispatched; not found within the recovery window, it is sent then, with the same call id and
attempt id, if it may still be dialled; older, it is closed as failed, never redialled blindly.
A ``sending`` row may have rung and left no trace yet: it is never sent again.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from livekit import api

from callcenter.campaign import Campaign, CampaignFile
from callcenter.outcomes import CallOutcome
from orchestration.defs.dialing.contacts import Contact
from orchestration.defs.dialing.dispatch import build_request, dial_deadline, dispatch
from orchestration.defs.dialing.ledger import Attempt, AttemptStatus, CampaignState, DialStore
from orchestration.defs.dialing.outcomes import ReadReport, find_report
from orchestration.defs.dialing.windows import window_verdict


@dataclass
class Recovery:
    recovered: list[str] = field(default_factory=list)  # reserved attempts found already dispatched
    redialed: list[str] = field(default_factory=list)  # reserved attempts dispatched now
    expired: list[str] = field(default_factory=list)
    # Dispatches sent whose answer never came and that left no trace yet: never sent again.
    unconfirmed: list[str] = field(default_factory=list)
    dialed: Counter[str] = field(default_factory=Counter)  # campaign -> dispatches created
    refused: str | None = None  # LiveKit refused a recovered attempt's dispatch: recovery stopped there


async def reconcile_reserved(
    store: DialStore,
    lk: api.LiveKitAPI,
    campaigns: Mapping[str, CampaignFile],
    read_report: ReadReport,
    *,
    clock: Callable[[], datetime],
    recovery_window: timedelta,
    renew_lease: Callable[[], None],
    registry_block: Callable[[str], str | None],
) -> Recovery:
    """Settle every ``reserved`` and ``sending`` attempt. ``renew_lease`` is called before each
    row (it raises when the tick lost its lease); ``registry_block`` says why a campaign's
    do-not-call registries forbid dialling it."""
    recovery = Recovery()
    for attempt in store.attempts([AttemptStatus.RESERVED, AttemptStatus.SENDING]):
        renew_lease()
        now = clock()
        found = await trace(lk, read_report, attempt)
        if found is not None:
            if store.mark_dispatched(attempt.attempt_id, found, now):
                recovery.recovered.append(attempt.call_id)
            continue
        if attempt.status is AttemptStatus.SENDING:
            # It may have rung and left no trace yet (the agent deletes the room at hang-up
            # and writes its report after the recording): never sent again. Its report
            # closes it, or the sweep times it out as failed after max_call_duration.
            recovery.unconfirmed.append(attempt.call_id)
            continue
        if attempt.reserved_at + recovery_window < now:
            # Too old to tell whether it rang: count it as a failed attempt, never redial blindly.
            store.close_attempt(
                attempt.call_id,
                CallOutcome.FAILED,
                now,
                note="reservation expired with no trace in LiveKit or the bucket",
            )
            recovery.expired.append(attempt.call_id)
            continue
        cf = campaigns.get(attempt.campaign_id)
        why_not, contact = still_dialable(store, cf.campaign if cf else None, attempt, now, registry_block)
        if why_not:
            store.cancel(attempt.attempt_id, f"not dialled after recovery: {why_not}", now)
            continue
        assert cf is not None and contact is not None
        profile = store.contact_profile(attempt.campaign_id, attempt.contact_id)
        deadline = dial_deadline(cf.campaign, now, contact.time_zones)
        request = build_request(cf.campaign, attempt, *profile, dial_by=deadline)
        outcome = await dispatch(store, lk, attempt, request, clock)
        if outcome == "dialed":
            recovery.redialed.append(attempt.call_id)
            recovery.dialed[attempt.campaign_id] += 1
        elif outcome.startswith("refused"):
            recovery.refused = f"LiveKit refused to dispatch recovered attempt {attempt.attempt_id}: {outcome}"
            break
    return recovery


async def trace(lk: api.LiveKitAPI, read_report: ReadReport, attempt: Attempt) -> str | None:
    """A dispatch id (or marker) when the call visibly happened; None when it left no trace."""
    dispatches = await lk.agent_dispatch.list_dispatch(attempt.call_id)
    if dispatches:
        return dispatches[0].id
    rooms = await lk.room.list_rooms(api.ListRoomsRequest(names=[attempt.call_id]))
    if rooms.rooms:
        return "room-exists"
    if find_report(read_report, attempt.call_id) is not None:
        return "session-report"
    return None


def still_dialable(
    store: DialStore,
    campaign: Campaign | None,
    attempt: Attempt,
    now: datetime,
    registry_block: Callable[[str], str | None],
) -> tuple[str | None, Contact | None]:
    """(why not, the contact): why the attempt may not be sent now, None when it may."""
    if campaign is None:
        return f"campaign {attempt.campaign_id} no longer defined", None
    state, _ = store.campaign_state(campaign.id)
    if state is not CampaignState.ACTIVE:
        return f"campaign {state.value}", None
    if store.is_do_not_call(attempt.phone_number):
        return "number on the do-not-call list", None
    if (blocked := registry_block(campaign.id)) is not None:
        return blocked, None
    contact = next((c for c in store.load_contacts(campaign.id) if c.contact_id == attempt.contact_id), None)
    if contact is None:
        return "contact removed from the list", None
    allowed, why = window_verdict(campaign.calling_window, now, contact.time_zones)
    return (None if allowed else why), contact
