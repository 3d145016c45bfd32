"""Operator controls: pause, resume, stop. They take effect before the next dial, even
inside a running tick (the dialer re-reads the campaign state before every dispatch)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from livekit import api

from orchestration.defs.dialing.ledger import AttemptStatus, CampaignState, DialStore
from orchestration.defs.webhooks import campaign_events as webhook_events


class ControlAction(StrEnum):
    PAUSE = "pause"  # no new dials; calls in progress finish
    RESUME = "resume"
    STOP = "stop"  # no new dials, unconfirmed reservations cancelled; optionally hang up live calls


def apply_control(store: DialStore, campaign_id: str, action: ControlAction, reason: str, now: datetime) -> list[str]:
    """Record the new state; returns the call ids still live in the campaign (for stop)."""
    state = {
        ControlAction.PAUSE: CampaignState.PAUSED,
        ControlAction.RESUME: CampaignState.ACTIVE,
        ControlAction.STOP: CampaignState.STOPPED,
    }[action]
    store.set_campaign_state(campaign_id, state, reason, now)
    if action is ControlAction.PAUSE:
        webhook_events.campaign_paused(store, campaign_id, reason, now)
    elif action is ControlAction.STOP:
        webhook_events.campaign_stopped(store, campaign_id, reason, now)
    if action is not ControlAction.STOP:
        return []
    # Reservations not yet sent never go out (the dialer's mark_sending finds them cancelled);
    # a dispatch already on its way is left to land, so its outcome is still recorded.
    for attempt in store.attempts([AttemptStatus.RESERVED], campaign_id=campaign_id):
        store.cancel(attempt.attempt_id, "campaign stopped before the dispatch was sent", now)
    live = [AttemptStatus.SENDING, AttemptStatus.DISPATCHED]
    return [a.call_id for a in store.attempts(live, campaign_id=campaign_id)]


async def hang_up(lk: api.LiveKitAPI, call_ids: list[str]) -> int:
    """Delete the rooms of live calls: LiveKit disconnects the callee and the agent at once.
    A room that does not exist (the call ended, or its dispatch never landed) is skipped."""
    ended = 0
    for call_id in call_ids:
        try:
            await lk.room.delete_room(api.DeleteRoomRequest(room=call_id))
        except api.TwirpError as e:
            if e.code != "not_found":
                raise
            continue
        ended += 1
    return ended
