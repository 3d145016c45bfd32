"""What LiveKit's own webhooks change: the dial ledger's call slots, and our call.started/ended events.

LiveKit names a call's room by its call id. ``room_finished`` (and the callee's SIP participant
leaving) moves an outbound attempt from ``dispatched`` to ``ended``: its call slot is free
within seconds, while its outcome (and any do-not-call request) still comes from the session
report, which closes it exactly once; when no report ever lands, the dialing tick's timeout
closes it as failed, as before. Every handler is idempotent: LiveKit may post an event twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from livekit.protocol.egress import EgressStatus
from livekit.protocol.models import ParticipantInfo
from livekit.protocol.webhook import WebhookEvent

from callcenter.ids import is_call_id
from orchestration.defs.dialing.ledger import Attempt, DialStore
from orchestration.defs.webhooks.outbox import EventType, record_event

log = logging.getLogger(__name__)

HANDLED = ("room_started", "room_finished", "participant_left", "egress_ended")


@dataclass(frozen=True)
class Handled:
    event: str
    call_id: str | None
    freed_slot: bool = False  # an outbound attempt left the capacity count
    message_id: str | None = None  # the outbound webhook recorded, if any
    note: str = ""


def _call_data(call_id: str, room_sid: str, attempt: Attempt | None) -> dict[str, Any]:
    """Ids only: never the number, the contact's name or anything said on the call."""
    data: dict[str, Any] = {"call_id": call_id, "room_sid": room_sid}
    if attempt is None:
        data["direction"] = "inbound"
    else:
        data |= {
            "direction": "outbound",
            "campaign_id": attempt.campaign_id,
            "contact_id": attempt.contact_id,
            "attempt_id": attempt.attempt_id,
            "attempt_number": attempt.attempt_number,
        }
    return data


def _at(seconds: int, fallback: datetime) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC) if seconds else fallback


def handle(store: DialStore, event: WebhookEvent, now: datetime) -> Handled:
    name = event.event
    if name == "egress_ended":
        info = event.egress_info
        status = EgressStatus.Name(info.status)
        if info.status != EgressStatus.EGRESS_COMPLETE:
            # The recording is incomplete: post-call reports the call's missing audio; say it here first.
            log.warning("egress %s of %s ended %s: %s", info.egress_id, info.room_name, status, info.error[:200])
        return Handled(name, info.room_name or None, note=status)
    if name not in HANDLED:
        return Handled(name, None, note="not handled")
    room = event.room
    call_id = room.name
    if not is_call_id(call_id):
        return Handled(name, None, note="not a call room")
    attempt = store.attempt_by_call(call_id)
    at = _at(event.created_at, now)

    if name == "participant_left":
        # The callee hung up: the agent is finishing, the slot is as good as free.
        if attempt is None or event.participant.kind != ParticipantInfo.Kind.SIP:
            return Handled(name, call_id, note="not an outbound callee")
        freed = store.mark_ended(call_id, "the callee left the room (LiveKit participant_left)")
        return Handled(name, call_id, freed_slot=freed)

    data = _call_data(call_id, room.sid, attempt)
    if name == "room_started":
        data["started_at"] = _at(room.creation_time, at).isoformat()
        mid = record_event(store, EventType.CALL_STARTED, data, f"call.started/{room.sid or call_id}", at)
        return Handled(name, call_id, message_id=mid)

    # room_finished
    freed = attempt is not None and store.mark_ended(call_id, "room finished (LiveKit room_finished)")
    started = _at(room.creation_time, at)
    data |= {
        "started_at": started.isoformat(),
        "ended_at": at.isoformat(),
        "duration_s": max(0.0, round((at - started).total_seconds(), 3)),
        # The outcome comes from the session report: call.analyzed carries it.
    }
    mid = record_event(store, EventType.CALL_ENDED, data, f"call.ended/{room.sid or call_id}", at)
    return Handled(name, call_id, freed_slot=freed, message_id=mid)
