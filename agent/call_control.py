"""Telephony actions on the live call through LiveKit's server API: hang up, cold transfer, DTMF.

Kept apart from the Agent so tools stay testable: the worker passes the job's
``LiveKitAPI``; tests pass one pointed at the Twirp double.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from livekit import api, rtc
from livekit.protocol import sip

from agent.outbound_trunk import OutboundTrunkMissing, outbound_trunk_id

log = logging.getLogger("agent.call_control")

# RFC 4733 event codes for the DTMF keys
_DTMF_CODES = {**{str(d): d for d in range(10)}, "*": 10, "#": 11, "A": 12, "B": 13, "C": 14, "D": 15}


class CallControl:
    def __init__(
        self,
        lkapi: api.LiveKitAPI,
        room_name: str,
        *,
        local_participant: rtc.LocalParticipant | None = None,
        on_finished: Callable[[], None] | None = None,
        trunk_id: str | None = None,
        trunk_name: str | None = None,
    ) -> None:
        self._api = lkapi
        self.trunk_id = trunk_id  # SIP_OUTBOUND_TRUNK_ID, else the trunk named trunk_name
        self.trunk_name = trunk_name
        self.room_name = room_name
        self.caller_identity: str | None = None  # the SIP participant, once known
        self._local = local_participant
        self._on_finished = on_finished
        self.finished = asyncio.Event()

    def attach(self, local_participant: rtc.LocalParticipant) -> None:
        """The agent's participant, once the session joined the room (needed for DTMF)."""
        self._local = local_participant

    async def hang_up(self) -> None:
        """End the call for everyone: deleting the room disconnects the SIP leg (BYE). If that
        fails, the caller is removed instead; either way the job ends (and writes its report):
        an agent left silent on the line, after a goodbye, would hold it until the caller hung up."""
        try:
            try:
                await self._api.room.delete_room(api.DeleteRoomRequest(room=self.room_name))
            except api.TwirpError as exc:
                if exc.code == "not_found":  # already gone: the caller hung up first
                    return
                raise
        except Exception as exc:
            log.error("could not delete the room (%s); removing the caller instead", type(exc).__name__)
            if self.caller_identity:
                try:
                    await self._api.room.remove_participant(
                        api.RoomParticipantIdentity(room=self.room_name, identity=self.caller_identity)
                    )
                except Exception as exc2:  # noqa: BLE001 - logged; the job still ends below
                    log.error("could not remove the caller either (%s)", type(exc2).__name__)
        finally:
            self._finish()

    async def transfer(self, transfer_to: str) -> None:
        """Cold transfer (SIP REFER) of the caller; the agent leaves the call afterwards."""
        if not self.caller_identity:
            raise RuntimeError("no SIP participant in the room to transfer")
        resp = await self._api.sip.transfer_sip_participant(
            api.TransferSIPParticipantRequest(
                room_name=self.room_name,
                participant_identity=self.caller_identity,
                transfer_to=transfer_to,
                play_dialtone=False,
            )
        )
        # no error can still mean a failed REFER (e.g. the queue did not pick up)
        if getattr(resp, "status", None) == sip.SIPTransferStatus.STS_TRANSFER_FAILED:
            raise RuntimeError(f"transfer to {transfer_to} failed: {sip.SIPTransferReason.Name(resp.reason)}")
        self._finish()

    async def outbound_trunk(self, dispatch_trunk: str | None = None) -> str:
        """The trunk a warm transfer dials the human through: the campaign's, the configured id, or
        the one named as the rollout names it (agent/outbound_trunk.py)."""
        if dispatch_trunk or self.trunk_id:
            return dispatch_trunk or self.trunk_id  # type: ignore[return-value]
        if not self.trunk_name:
            raise OutboundTrunkMissing("no outbound SIP trunk configured (SIP_OUTBOUND_TRUNK_NAME or _ID)")
        return await outbound_trunk_id(self._api, self.trunk_name)

    def leave(self) -> None:
        """The agent leaves a call that goes on without it (a warm transfer connected the caller
        to a human): the job ends and writes its report; the room stays."""
        self._finish()

    async def send_dtmf(self, digits: str) -> None:
        if self._local is None:
            raise RuntimeError("DTMF needs the room's local participant")
        bad = [d for d in digits if d.upper() not in _DTMF_CODES]
        if bad:
            raise ValueError(f"not DTMF keys: {''.join(bad)!r} (allowed 0-9 * # A-D)")
        for d in digits:
            await self._local.publish_dtmf(code=_DTMF_CODES[d.upper()], digit=d.upper())
            await asyncio.sleep(0.25)  # inter-digit gap IVRs expect

    def _finish(self) -> None:
        if not self.finished.is_set():
            self.finished.set()
            if self._on_finished is not None:
                self._on_finished()
