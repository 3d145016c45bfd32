"""Placing the outbound call: one SIP participant, waiting until the callee answers.

A failed dial comes back from LiveKit as a Twirp error carrying the SIP final response
(``sip_status_code``); ``callcenter.outcomes`` maps it to the shared outcome vocabulary
(486 busy, 480/408 no answer, 404/484 wrong number, 603 declined, ...).

The trunk is the one the rollout keeps by name, its id looked up at dial time
(``agent.outbound_trunk``); a missing trunk is a failed attempt the dial ledger retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from google.protobuf.duration_pb2 import Duration
from livekit import api

from agent.outbound_trunk import OutboundTrunkMissing, forget_outbound_trunk, outbound_trunk_id
from callcenter.dispatch import OutboundCallRequest
from callcenter.outcomes import CallOutcome, outcome_for_sip_status

log = logging.getLogger("agent.dialing")


@dataclass(frozen=True)
class DialResult:
    outcome: CallOutcome
    sip_status_code: int | None
    participant_identity: str | None = None
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.outcome is CallOutcome.ANSWERED


def callee_identity(request: OutboundCallRequest) -> str:
    return f"callee-{request.attempt_id}"


def dial_request(
    request: OutboundCallRequest, *, room_name: str, trunk_id: str, max_call_duration_s: int
) -> api.CreateSIPParticipantRequest:
    return api.CreateSIPParticipantRequest(
        room_name=room_name,
        sip_trunk_id=trunk_id,
        sip_call_to=request.phone_number,
        sip_number=request.caller_id or "",
        participant_identity=callee_identity(request),
        participant_name="callee",
        participant_attributes={
            "callcenter.campaign_id": request.campaign_id,
            "callcenter.contact_id": request.contact_id,
            "callcenter.attempt_id": request.attempt_id,
        },
        wait_until_answered=True,
        ringing_timeout=Duration(seconds=int(request.ring_timeout_s)),
        max_call_duration=Duration(seconds=max_call_duration_s),
        play_dialtone=False,
    )


async def place_call(
    lkapi: api.LiveKitAPI,
    request: OutboundCallRequest,
    *,
    room_name: str,
    trunk_id: str | None = None,
    trunk_name: str | None = None,
    max_call_duration_s: int = 1800,
) -> DialResult:
    """Dial and wait for an answer; never raises for a call that did not connect.

    The trunk: the dispatch's ``sip_trunk_id``, else ``trunk_id`` (SIP_OUTBOUND_TRUNK_ID), else
    the one named ``trunk_name`` (SIP_OUTBOUND_TRUNK_NAME, the rollout's name for it)."""
    trunk = request.sip_trunk_id or trunk_id
    by_name = not trunk
    if by_name:
        if not trunk_name:
            raise RuntimeError(
                "no outbound SIP trunk: set SIP_OUTBOUND_TRUNK_NAME (or SIP_OUTBOUND_TRUNK_ID) on the agent "
                "or sip_trunk_id in the dispatch"
            )
        try:
            trunk = await outbound_trunk_id(lkapi, trunk_name)
        except OutboundTrunkMissing as exc:
            return _not_dialed(room_name, str(exc))
        except api.TwirpError as exc:
            return _not_dialed(room_name, f"LiveKit did not list the outbound trunks: {exc.code}: {exc.message}")
    req = dial_request(request, room_name=room_name, trunk_id=trunk, max_call_duration_s=max_call_duration_s)
    try:
        info = await lkapi.sip.create_sip_participant(req)
    except api.TwirpError as exc:
        code = _sip_status_code(exc)
        outcome = outcome_for_sip_status(code)
        if by_name and code is None and exc.code == api.TwirpErrorCode.NOT_FOUND:
            # the trunk was deleted (and maybe made again under a new id) since we looked it up
            forget_outbound_trunk(lkapi, trunk_name, trunk)
        log.info(
            "dial failed: %s", exc.message, extra={"call_id": room_name, "sip_status_code": code, "outcome": outcome}
        )
        return DialResult(outcome=outcome, sip_status_code=code, error=f"{exc.code}: {exc.message}")
    return DialResult(outcome=CallOutcome.ANSWERED, sip_status_code=200, participant_identity=info.participant_identity)


def _not_dialed(room_name: str, reason: str) -> DialResult:
    """No trunk to dial through: a failed attempt (the dial ledger retries after backoff), not a crash."""
    log.error("not dialing: %s", reason, extra={"call_id": room_name, "outcome": CallOutcome.FAILED})
    return DialResult(outcome=CallOutcome.FAILED, sip_status_code=None, error=reason)


def _sip_status_code(exc: api.TwirpError) -> int | None:
    if isinstance(exc, api.SipCallError):
        return exc.sip_status_code
    raw = (exc.metadata or {}).get("sip_status_code")
    try:
        return int(raw) if raw is not None else None
    except ValueError:
        return None
