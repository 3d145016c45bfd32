"""Warm transfer with a summary handoff, on LiveKit's own ``WarmTransferTask``.

The SDK's task (livekit.agents.beta.workflows) does the work: hold audio for the caller, the
human dialled with ``CreateSIPParticipant`` into a consult room (``<room>-human-agent``), a
second session there that briefs the human with the model's summary of the call, then
``MoveParticipant`` of the human into the caller's room. This module only adds what the call
center needs around it:

- the conversation the summary is made from is redacted first (``callcenter.redaction``), so no
  card or SSN digits reach the model that briefs the human, nor the human;
- each step lands in the session report's ``transfer_steps`` with its time and, for a failure,
  why (SIP status, timeout, no SIP service, the move refused);
- the agent's own bound on the dial: the ringing timeout plus a margin, so a server that never
  answers ``CreateSIPParticipant`` cannot hold the caller on hold music.

What livekit-server v1.13.5 does with the two API calls (its source, pkg/service): the SIP call
is forwarded to livekit-sip over the message bus, and ``MoveParticipant`` is answered "not
implemented" by the open-source RoomManager (a LiveKit Cloud feature). So the persona's
``warm_transfer.connect`` chooses the connect step: ``bridge`` (the default, any server) keeps both
rooms and has the job relay the two voices between them (agent/call_bridge.py); ``move`` is the
SDK's ``MoveParticipant``, for LiveKit Cloud (docs/warm-transfer.md).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from livekit import api
from livekit.agents import ToolError, get_job_context, llm
from livekit.agents.beta.workflows import WarmTransferTask
from livekit.agents.beta.workflows.warm_transfer import WarmTransferResult
from livekit.agents.voice.background_audio import AudioConfig, BuiltinAudioClip

from agent.call_bridge import CallBridge
from callcenter.redaction import redact_conversation
from callcenter.report import TransferStepName

if TYPE_CHECKING:
    from livekit import rtc
    from livekit.agents import AgentSession

    from agent.call_state import CallState
    from agent.personas import WarmTransfer

log = logging.getLogger("agent.warm_transfer")

# CreateSIPParticipant with wait_until_answered returns when the human answers or the ringing
# timeout ends; beyond this margin the agent stops waiting on the server itself.
DIAL_MARGIN_S = 10.0


def in_a_job() -> bool:
    """The task needs the job's room and API: a text-mode session outside a job has neither."""
    return get_job_context(required=False) is not None


def briefing_context(history: llm.ChatContext) -> llm.ChatContext:
    """The call so far, for the model that briefs the human: the caller's and the agent's words
    only, redacted as one conversation (a card read across turns is caught too)."""
    said = [m for m in history.messages() if m.role in ("user", "assistant") and (m.text_content or "").strip()]
    redacted = redact_conversation([("caller" if m.role == "user" else "agent", m.text_content or "") for m in said])
    ctx = llm.ChatContext.empty()
    for message, text in zip(said, redacted.texts, strict=True):
        ctx.add_message(role=message.role, content=text)
    return ctx


def sip_call_to(transfer_to: str) -> str:
    """CreateSIPParticipant's ``sip_call_to`` from the transfer target: a number or a SIP URI
    (the cold transfer's ``tel:`` prefix is dropped)."""
    return transfer_to.removeprefix("tel:")


def failure_detail(exc: BaseException) -> str:
    """Why the dial failed, for the report: status codes and error kinds, never a number."""
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    if isinstance(exc, api.TwirpError):
        status = (exc.metadata or {}).get("sip_status_code")
        if isinstance(exc, api.SipCallError):
            status = str(exc.sip_status_code)
        return f"sip {status}" if status else f"livekit {exc.code}"
    return type(exc).__name__


class CallCenterWarmTransfer(WarmTransferTask):
    """``WarmTransferTask`` with the call's steps recorded on ``CallState``."""

    def __init__(
        self,
        call: CallState,
        settings: WarmTransfer,
        *,
        history: llm.ChatContext,
        trunk_id: str,
        hold_audio: bool,
    ) -> None:
        assert call.transfer_to is not None
        super().__init__(
            sip_call_to=sip_call_to(call.transfer_to),
            sip_trunk_id=trunk_id,
            ringing_timeout=settings.ringing_timeout_s,
            hold_audio=AudioConfig(BuiltinAudioClip.HOLD_MUSIC, volume=0.8) if hold_audio else None,
            chat_ctx=briefing_context(history),
            extra_instructions=settings.briefing or "",
        )
        self._call = call
        self._dial_timeout_s = settings.ringing_timeout_s + DIAL_MARGIN_S
        self._connect = settings.connect
        self.bridge: CallBridge | None = None  # set once the connect step bridged caller and human
        self._consult_session: AgentSession | None = None  # kept (silent) while the bridge runs

    async def on_enter(self) -> None:
        self._call.transfer_step(TransferStepName.HOLD_STARTED)
        await super().on_enter()

    async def _dial_human_agent(self) -> AgentSession:
        session = await super()._dial_human_agent()

        def said(ev) -> None:  # noqa: ANN001 - ConversationItemAddedEvent
            item = ev.item
            if self.done():  # words after the task ended (a failed move) brief nobody
                return
            if getattr(item, "role", None) == "assistant" and (item.text_content or "").strip():
                self._call.transfer_step(TransferStepName.BRIEFED, once=True)

        session.on("conversation_item_added", said)
        return session

    async def _originate_human_agent(self, *, room_name: str, identity: str, room: rtc.Room) -> None:
        self._call.transfer_step(TransferStepName.DIALLED)
        try:
            await asyncio.wait_for(
                super()._originate_human_agent(room_name=room_name, identity=identity, room=room),
                timeout=self._dial_timeout_s,
            )
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                self._call.transfer_step(TransferStepName.FAILED, failure_detail(exc))
                log.warning("the human was not reached: %s", failure_detail(exc), extra={"call_id": self._call.call_id})
            raise
        self._call.transfer_step(TransferStepName.ANSWERED)

    async def _merge_calls(self) -> None:
        try:
            if self._connect == "move":
                await super()._merge_calls()
            else:
                await self._bridge_calls()
        except Exception as exc:
            # livekit-server answers MoveParticipant "not implemented" when self-hosted: back to the caller
            detail = f"{self._connect} {failure_detail(exc)}"
            self._call.transfer_step(TransferStepName.FAILED, detail)
            log.warning("could not connect the human to the caller: %s", detail, extra={"call_id": self._call.call_id})
            self._set_result(ToolError("could not connect the human to the caller"))
            raise
        self._call.transfer_step(TransferStepName.CONNECTED, None if self._connect == "move" else "bridge")

    async def _bridge_calls(self) -> None:
        """The self-hosted connect: the caller's and the human's voices relayed between the two rooms."""
        assert self._caller_room is not None and self._human_agent_sess is not None
        consult_room = self._human_agent_sess.room_io.room
        caller = self.session.room_io.linked_participant
        if caller is None:
            raise RuntimeError("the caller has left")
        # from here the consult room's end is the bridge's business, not a failed transfer
        consult_room.off("disconnected", self._on_human_agent_room_close)
        job = get_job_context()
        caller_room, consult_room_name = self._caller_room.name, consult_room.name

        async def hang_up() -> None:
            # One DeleteRoom per room, one after the other: livekit-server v1.13.5 re-creates a
            # room that two DeleteRooms reach at once (the second still finds it in the store, and
            # the CreateRoom its DeleteRoom makes first dispatches a new agent job into it:
            # pkg/service/roomservice.go). So the SDK's own delete on the caller's hang-up is off
            # (below), and the consult room, which its session deletes when the human's leg ends,
            # is deleted here only while the human is still on the line.
            rooms = [caller_room] + ([] if bridge.gone == "human" else [consult_room_name])
            for name in rooms:
                try:
                    await job.api.room.delete_room(api.DeleteRoomRequest(room=name))
                except api.TwirpError as exc:
                    if exc.code != api.TwirpErrorCode.NOT_FOUND:
                        raise
            if self._consult_session is not None:
                self._consult_session.shutdown(drain=False)

        bridge = CallBridge(
            caller_room=self._caller_room,
            caller_identity=caller.identity,
            consult_room=consult_room,
            human_identity=self._human_agent_identity,
            hang_up=hang_up,
        )
        try:
            await bridge.start()
        except BaseException:
            consult_room.on("disconnected", self._on_human_agent_room_close)
            raise
        self.bridge = bridge
        job.add_shutdown_callback(bridge.aclose)  # a hang-up on either side ends the other

    def _on_caller_participant_disconnected(self, participant: rtc.RemoteParticipant) -> None:
        if self.bridge is not None:
            return  # the bridge hangs up both legs itself, deleting each room once
        super()._on_caller_participant_disconnected(participant)

    def _set_result(self, result: WarmTransferResult | Exception) -> None:
        if self.bridge is not None and not self.done() and self._human_agent_sess is not None:
            # the consult room carries the human's leg now: its session stops listening and talking
            # (the SDK would shut it down, which deletes the room), and ends with the bridge
            session, self._human_agent_sess = self._human_agent_sess, None
            session.input.set_audio_enabled(False)
            session.output.set_audio_enabled(False)
            self._consult_session = session
        super()._set_result(result)


def failure_of(error: ToolError) -> str:
    """The task's own ToolError messages as a report detail (the human's words are left out)."""
    message = str(error)
    if message.startswith("human agent declined"):
        return "declined"
    if message.startswith("voicemail"):
        return "voicemail"
    if message.startswith("room closed"):
        return "human hung up"
    return "not reached"


def parse_callback_time(when: str, *, now: datetime) -> datetime | Literal["asap"]:
    """The callback time the model heard: 'asap', or an ISO 8601 time with its UTC offset, not past."""
    text = when.strip()
    if text.lower() in ("asap", "now", "as soon as possible"):
        return "asap"
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not a time: {when!r}; give ISO 8601 with its UTC offset, or 'asap'") from None
    if at.tzinfo is None:
        raise ValueError("the time needs its UTC offset (the caller's local offset), e.g. 2026-12-05T10:00:00-05:00")
    if at < now:
        raise ValueError(f"{at.isoformat()} is in the past (now {now:%Y-%m-%d %H:%M} UTC): ask the caller again")
    return at
