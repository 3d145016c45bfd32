"""Plan one dialing tick for one campaign: who is dialled now, and why every other contact
is not. ``plan_tick`` is pure and fast (no I/O); ``plan_from_ledger`` reads its inputs from the
ledger. The same functions drive the dialing job and the dry run."""

from __future__ import annotations

import gc
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from callcenter.campaign import Campaign
from orchestration.defs.dialing.contacts import Contact
from orchestration.defs.dialing.ledger import CampaignState, ContactHistory, DialStore
from orchestration.defs.dialing.outcomes import callback_prefix, parse_callback_mark
from orchestration.defs.dialing.windows import window_verdict

# Below this many answered calls in 30 days the abandonment rate is too noisy to act on.
ABANDONMENT_MIN_SAMPLE = 30
ABANDONMENT_LIMIT = 0.03
# The abandonment rate is measured over this window (FTC/Ofcom style rule).
ABANDONMENT_WINDOW = timedelta(days=30)


class SkipReason(StrEnum):
    CAMPAIGN_PAUSED = "campaign_paused"
    CAMPAIGN_STOPPED = "campaign_stopped"
    ABANDONMENT_LIMIT = "abandonment_limit"
    DO_NOT_CALL_REGISTRY = "do_not_call_registry"  # a registry of the campaign is not imported: fail closed
    DO_NOT_CALL = "do_not_call"
    COMPLETED = "completed"
    MAX_ATTEMPTS = "max_attempts"
    IN_FLIGHT = "in_flight"
    BACKOFF = "backoff"
    TIME_ZONE_UNKNOWN = "time_zone_unknown"
    OUTSIDE_CALLING_WINDOW = "outside_calling_window"
    CAPACITY = "capacity"


class Selection(NamedTuple):
    contact: Contact
    attempt_number: int
    why: str


class Skip(NamedTuple):  # tuples: a 100k-contact tick makes ~100k of these
    contact_id: str
    phone_number: str
    reason: SkipReason
    detail: str


@dataclass
class Capacity:
    """Free call slots this tick: the campaign's own limit and the fleet-wide one."""

    campaign_limit: int
    campaign_live: int
    global_limit: int
    global_live: int

    @property
    def free(self) -> int:
        return max(0, min(self.campaign_limit - self.campaign_live, self.global_limit - self.global_live))


@dataclass
class Plan:
    campaign_id: str
    at: datetime
    capacity: Capacity
    selected: list[Selection] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)

    @property
    def skip_counts(self) -> dict[str, int]:
        return dict(Counter(s.reason.value for s in self.skipped).most_common())

    def explain(self, limit: int = 20) -> str:
        lines = [
            f"campaign {self.campaign_id} at {self.at:%Y-%m-%d %H:%M} UTC: dial {len(self.selected)}, "
            f"skip {len(self.skipped)} (free capacity {self.capacity.free})"
        ]
        lines += [
            f"  dial {s.contact.contact_id} {s.contact.phone_number} attempt {s.attempt_number}: {s.why}"
            for s in self.selected[:limit]
        ]
        for reason, n in self.skip_counts.items():
            lines.append(f"  skip {n} x {reason}")
            lines += [f"    {s.contact_id} {s.phone_number}: {s.detail}" for s in self.skipped if s.reason == reason][
                :3
            ]
        return "\n".join(lines)


@contextmanager
def gc_paused() -> Iterator[None]:
    """Planning allocates ~one object per contact; with 100k live contacts in the heap the
    cyclic GC's full passes cost more than the planning itself. Nothing here makes cycles."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def plan_tick(
    campaign: Campaign,
    contacts: list[Contact],
    *,
    now: datetime,
    state: CampaignState,
    do_not_call: set[str] | frozenset[str],
    history: dict[str, ContactHistory],
    capacity: Capacity,
    abandonment: tuple[int, int] = (0, 0),
    registry_block: str | None = None,
    callbacks: dict[str, tuple[int, datetime]] | None = None,
) -> Plan:
    """``registry_block`` says why the campaign's do-not-call registries are not usable (never
    imported, last import failed): then nobody is dialled. ``callbacks``: contact id -> (the
    attempt it was asked on, when): that contact's next attempt waits for that time instead of
    the backoff, once, whatever the outcome and attempts so far; window and do-not-call still hold."""
    with gc_paused():
        return _plan(
            campaign, contacts, now, state, do_not_call, history, capacity, abandonment, registry_block, callbacks or {}
        )


def plan_from_ledger(
    store: DialStore,
    campaign: Campaign,
    now: datetime,
    *,
    global_limit: int,
    global_live: int,
    registry_block: str | None,
) -> Plan:
    """Plan from what the ledger holds now: the campaign's state, its open attempts, its loaded
    contacts, the do-not-call list, every contact's history and the abandonment rate.
    ``global_live`` counts the fleet's calls (this tick's dials included)."""
    state, _ = store.campaign_state(campaign.id)
    live = store.live_counts()
    capacity = Capacity(
        campaign_limit=campaign.max_concurrent_calls,
        campaign_live=live.get(campaign.id, 0),
        global_limit=global_limit,
        global_live=global_live,
    )
    with gc_paused():  # the ledger reads build ~3 objects per contact
        contacts = store.load_contacts(campaign.id)
        do_not_call = store.do_not_call_numbers()
        history = store.history(campaign.id)
    callbacks = {}
    for name, at in store.marks(callback_prefix(campaign.id)).items():
        if (mark := parse_callback_mark(name, campaign.id)) is not None:
            callbacks[mark[0]] = (mark[1], at)
    return plan_tick(
        campaign,
        contacts,
        now=now,
        state=state,
        do_not_call=do_not_call,
        history=history,
        capacity=capacity,
        abandonment=store.abandonment(campaign.id, now - ABANDONMENT_WINDOW),
        registry_block=registry_block,
        callbacks=callbacks,
    )


def _plan(
    campaign: Campaign,
    contacts: list[Contact],
    now: datetime,
    state: CampaignState,
    do_not_call: set[str] | frozenset[str],
    history: dict[str, ContactHistory],
    capacity: Capacity,
    abandonment: tuple[int, int],
    registry_block: str | None = None,
    callbacks: dict[str, tuple[int, datetime]] | None = None,
) -> Plan:
    callbacks = callbacks or {}
    plan = Plan(campaign.id, now, capacity)
    blocked = _campaign_block(state, abandonment, registry_block)
    if blocked is not None:
        reason, detail = blocked
        plan.skipped = [Skip(c.contact_id, c.phone_number, reason, detail) for c in contacts]
        return plan

    window = campaign.calling_window
    verdicts: dict[tuple[str, ...], tuple[bool, str]] = {}
    eligible: list[tuple[int, int, Contact, str]] = []
    skipped = plan.skipped
    for position, c in enumerate(contacts):
        if c.phone_number in do_not_call:
            skipped.append(
                Skip(c.contact_id, c.phone_number, SkipReason.DO_NOT_CALL, "number is on the do-not-call list")
            )
            continue
        h = history.get(c.contact_id)
        attempts = 0
        if h is not None:
            attempts = h.attempts
            if h.open:
                skipped.append(Skip(c.contact_id, c.phone_number, SkipReason.IN_FLIGHT, "an attempt is still open"))
                continue
            callback = callbacks.get(c.contact_id)
            if callback is not None and callback[0] == attempts:  # asked on the last attempt: not yet called back
                if callback[1] > now:
                    skipped.append(
                        Skip(
                            c.contact_id,
                            c.phone_number,
                            SkipReason.BACKOFF,
                            f"callback requested for {callback[1]:%Y-%m-%d %H:%M} UTC",
                        )
                    )
                    continue
            elif h.last_outcome is not None:
                wait = campaign.backoff_for(h.last_outcome)
                if wait is None:
                    skipped.append(
                        Skip(c.contact_id, c.phone_number, SkipReason.COMPLETED, f"last outcome {h.last_outcome.value}")
                    )
                    continue
                if attempts >= campaign.max_attempts:
                    skipped.append(
                        Skip(
                            c.contact_id,
                            c.phone_number,
                            SkipReason.MAX_ATTEMPTS,
                            f"{attempts} of {campaign.max_attempts} attempts made",
                        )
                    )
                    continue
                if h.last_closed_at is not None and h.last_closed_at + wait > now:
                    until = h.last_closed_at + wait
                    skipped.append(
                        Skip(
                            c.contact_id,
                            c.phone_number,
                            SkipReason.BACKOFF,
                            f"after {h.last_outcome.value}, retry from {until:%Y-%m-%d %H:%M} UTC",
                        )
                    )
                    continue
            elif attempts >= campaign.max_attempts:
                skipped.append(
                    Skip(
                        c.contact_id,
                        c.phone_number,
                        SkipReason.MAX_ATTEMPTS,
                        f"{attempts} of {campaign.max_attempts} attempts made",
                    )
                )
                continue
        verdict = verdicts.get(c.time_zones)
        if verdict is None:
            verdict = verdicts[c.time_zones] = window_verdict(window, now, c.time_zones)
        allowed, why = verdict
        if not allowed:
            reason = SkipReason.TIME_ZONE_UNKNOWN if not c.time_zones else SkipReason.OUTSIDE_CALLING_WINDOW
            skipped.append(Skip(c.contact_id, c.phone_number, reason, why))
            continue
        eligible.append((attempts, position, c, why))

    # Reach everyone once before retrying anyone; list order breaks ties.
    eligible.sort(key=lambda e: (e[0], e[1]))
    free = capacity.free
    for attempts, _pos, c, why in eligible[:free]:
        plan.selected.append(
            Selection(c, attempts + 1, f"local time {why}; attempt {attempts + 1} of {campaign.max_attempts}")
        )
    for _attempts, _pos, c, _why in eligible[free:]:
        skipped.append(
            Skip(c.contact_id, c.phone_number, SkipReason.CAPACITY, f"no free call slot ({free} free this tick)")
        )
    return plan


def _campaign_block(
    state: CampaignState, abandonment: tuple[int, int], registry_block: str | None = None
) -> tuple[SkipReason, str] | None:
    if state is CampaignState.PAUSED:
        return SkipReason.CAMPAIGN_PAUSED, "campaign is paused"
    if state is CampaignState.STOPPED:
        return SkipReason.CAMPAIGN_STOPPED, "campaign is stopped"
    if registry_block is not None:
        return SkipReason.DO_NOT_CALL_REGISTRY, registry_block
    abandoned, answered = abandonment
    if answered >= ABANDONMENT_MIN_SAMPLE and abandoned / answered >= ABANDONMENT_LIMIT:
        return (
            SkipReason.ABANDONMENT_LIMIT,
            f"abandonment {abandoned}/{answered} = {abandoned / answered:.1%} over 30 days (limit {ABANDONMENT_LIMIT:.0%})",
        )
    return None
