"""campaign.paused and campaign.finished: recorded where dialing changes or plans a campaign.

A stop is a finish (reason ``stopped``); a campaign also finishes by itself when a tick finds
every contact settled (completed, out of attempts, or do-not-call) and no attempt open. Its
dedupe key holds the number of attempts made, so one finish is announced once, and a list
reloaded with new contacts finishes (and is announced) again after they are dialled.
"""

from __future__ import annotations

from datetime import datetime

from orchestration.defs.dialing.ledger import DialStore
from orchestration.defs.dialing.planner import Plan, SkipReason
from orchestration.defs.webhooks.outbox import EventType, record_event

SETTLED = frozenset({SkipReason.COMPLETED, SkipReason.MAX_ATTEMPTS, SkipReason.DO_NOT_CALL})


def _attempts_made(counts: dict[str, int]) -> int:
    return sum(counts.values())


def campaign_paused(store: DialStore, campaign_id: str, reason: str, at: datetime) -> str | None:
    data = {"campaign_id": campaign_id, "reason": reason, "paused_at": at.isoformat()}
    return record_event(store, EventType.CAMPAIGN_PAUSED, data, f"campaign.paused/{campaign_id}/{at.timestamp()}", at)


def campaign_stopped(store: DialStore, campaign_id: str, reason: str, at: datetime) -> str | None:
    counts = store.outcome_counts(campaign_id)
    data = {
        "campaign_id": campaign_id,
        "reason": "stopped",
        "detail": reason,
        "finished_at": at.isoformat(),
        "attempts": _attempts_made(counts),
        "outcomes": counts,
    }
    return record_event(
        store, EventType.CAMPAIGN_FINISHED, data, f"campaign.finished/{campaign_id}/stopped/{at.timestamp()}", at
    )


def campaign_finished_if_settled(store: DialStore, plan: Plan, at: datetime) -> str | None:
    """After a tick planned ``plan``: record campaign.finished when nobody is left to call."""
    if plan.selected or not plan.skipped or any(s.reason not in SETTLED for s in plan.skipped):
        return None
    if any(h.open for h in store.history(plan.campaign_id).values()):
        return None  # a call in progress, or one whose report has not landed, may still change it
    counts = store.outcome_counts(plan.campaign_id)
    made = _attempts_made(counts)
    data = {
        "campaign_id": plan.campaign_id,
        "reason": "completed",
        "finished_at": at.isoformat(),
        "contacts": len(plan.skipped),
        "attempts": made,
        "outcomes": counts,
        "settled": plan.skip_counts,
    }
    return record_event(store, EventType.CAMPAIGN_FINISHED, data, f"campaign.finished/{plan.campaign_id}/{made}", at)
