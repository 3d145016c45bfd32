"""The LiveKit Agents worker: one job per call, inbound or outbound.

    python -m agent.worker start        # production (Procfile)
    python -m agent.worker dev          # local, with reload

Dispatch is explicit by ``agent_name``: the SIP dispatch rule names it for inbound calls;
dialing creates an agent dispatch with ``OutboundCallRequest`` JSON metadata for outbound
ones. Job metadata present = outbound.

SIGTERM drains: the worker stops taking jobs and lets running calls finish for up to
``DRAIN_TIMEOUT_S`` (1800 s); the pod's terminationGracePeriodSeconds must be at least that.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime

from livekit import api, rtc
from livekit.agents import NOT_GIVEN, AgentServer, AgentSession, JobContext, JobProcess, cli, llm, room_io
from pydantic import ValidationError

from agent.call_agent import CallCenterAgent, OutboundCallAgent, mark_answered
from agent.call_control import CallControl
from agent.call_state import CallState, utcnow
from agent.dialing import callee_identity, place_call
from agent.payment import PaymentStep
from agent.personas import load_persona
from agent.pipeline import build_session, load_vad
from agent.recording import CallRecording, finish_recording, pause_recording, resume_recording, start_recording
from agent.session_report import (
    build_report,
    redact_turns,
    upload_report,
    write_do_not_call_request,
    write_raw_live_transcript,
)
from agent.settings import AgentSettings, load_settings
from agent.stt_failure import SttFailureGuard
from callcenter.dispatch import OutboundCallRequest, parse_dispatch
from callcenter.do_not_call import HeardBy, caller_asks_not_to_be_called
from callcenter.ids import is_call_id, new_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.report import SessionReport

log = logging.getLogger("agent.worker")

# SIP participant attributes LiveKit sets on inbound calls
_ATTR_CALLER_NUMBER = "sip.phoneNumber"
_ATTR_TRUNK_NUMBER = "sip.trunkPhoneNumber"


def prewarm(proc: JobProcess) -> None:
    """Once per worker process, before it takes calls: settings and the VAD model."""
    settings = load_settings()
    proc.userdata["settings"] = settings
    proc.userdata["vad"] = load_vad(settings)


def outbound_request(ctx: JobContext) -> OutboundCallRequest | None:
    metadata = ctx.job.metadata or ""
    if not metadata.strip():
        return None
    request = parse_dispatch(metadata)
    if request.call_id != ctx.room.name:
        raise ValueError(f"dispatch call_id {request.call_id} does not match the room {ctx.room.name}")
    return request


def call_id_for(room_name: str, request: OutboundCallRequest | None) -> str:
    """The call's id: an outbound call's is its dispatch's (the room is named after it). An inbound
    room is named by the SIP dispatch rule (``<prefix>_<caller number>_<random>``), which is no call
    id and carries the caller's number: the agent mints ``call-<uuid7>`` and the report keeps the
    room name in ``room``."""
    if request is not None:
        return request.call_id
    return room_name if is_call_id(room_name) else new_call_id()


def metadata_problems(exc: Exception) -> list[str]:
    """What was wrong with a dispatch, for the log: field names and error kinds only (pydantic's
    own message quotes the values: the callee's number, the contact list's columns)."""
    if isinstance(exc, ValidationError):
        return [".".join(map(str, e["loc"])) + ": " + e["type"] for e in exc.errors()]
    return [type(exc).__name__]


async def entrypoint(ctx: JobContext) -> None:
    settings: AgentSettings = ctx.proc.userdata.get("settings") or load_settings()
    room_name = ctx.room.name
    try:
        request = outbound_request(ctx)
    except (ValidationError, ValueError) as exc:
        # nothing was dialed: the dial ledger sees no report and retries per its policy
        # (an inbound room's name carries the caller's number: it is never logged)
        log.error("rejecting outbound job with invalid metadata: %s", metadata_problems(exc))
        ctx.shutdown(reason="invalid dispatch metadata")
        return
    call_id = call_id_for(room_name, request)
    control = CallControl(
        ctx.api,
        room_name,
        on_finished=lambda: ctx.shutdown(reason="call ended"),
        trunk_id=settings.sip_outbound_trunk_id,  # a warm transfer dials the human through it
        trunk_name=settings.sip_outbound_trunk_name,
    )
    call = new_call(control, request, settings, call_id=call_id)
    if call.persona.payment is not None:
        # there from the start: a payment step before the recording starts holds it
        call.recording = CallRecording(ctx.api, settings, call)
        call.payment = PaymentStep(
            call_id,
            pause=lambda: pause_recording(call),
            resume=lambda: resume_recording(call),
            resume_after_s=call.persona.payment.resume_after_s,
        )

    session = build_session(settings, userdata=call, vad_model=ctx.proc.userdata.get("vad") or load_vad(settings))
    agent = OutboundCallAgent(call) if request else CallCenterAgent(call)
    # STT gave up mid-call: apologise, then transfer or hang up (never a silent line)
    stt_guard = SttFailureGuard(session, agent)

    async def write_report(reason: str) -> None:
        await stt_guard.wait()  # the apology and the transfer or hang-up come first
        ended_at = utcnow()  # the hang-up, not after waiting for Egress to finish the file
        report = await finish_call(call, session.history, ctx.api, settings, ended_at=ended_at)
        # tokens / audio seconds per model: capacity planning reads these from the logs
        usage = [u.model_dump(exclude_none=True) for u in session.usage.model_usage]
        log.info("call finished: %s (%s)", report.outcome, reason, extra={"call_id": call_id, "usage": usage})

    ctx.add_shutdown_callback(write_report)
    watch_do_not_call(call, session, settings)
    # the caller hung up (or the room went away): end the job, which writes the report
    session.on("close", lambda _ev: ctx.shutdown(reason="session closed"))

    room_options = room_io.RoomOptions(
        participant_identity=callee_identity(request) if request else NOT_GIVEN,
        close_on_disconnect=True,
    )
    # start before dialing so the callee's first words ("Hello?") reach the STT
    await session.start(agent=agent, room=ctx.room, room_options=room_options)
    control.attach(ctx.room.local_participant)

    if request is None:
        caller = await ctx.wait_for_participant(kind=rtc.ParticipantKind.PARTICIPANT_KIND_SIP)
        control.caller_identity = caller.identity
        call.from_number = caller.attributes.get(_ATTR_CALLER_NUMBER) or None
        call.to_number = caller.attributes.get(_ATTR_TRUNK_NUMBER) or None
    if not await connect_call(call, agent, ctx.api, settings):
        ctx.shutdown(reason=f"dial failed: {call.outcome}")


def watch_do_not_call(call: CallState, session: AgentSession, settings: AgentSettings) -> None:
    """Write a do-not-call request the moment it is heard: by the model's tool, or in the caller's
    own final words (the backstop). The write retries on its own; a failure is logged loudly and
    the report at the end of the call still carries the request."""
    writes: set[asyncio.Task] = set()

    def write(heard_by: HeardBy) -> None:
        task = asyncio.create_task(write_do_not_call_request(settings, call, heard_by))
        writes.add(task)
        task.add_done_callback(_report_write_failure)
        task.add_done_callback(writes.discard)

    def _report_write_failure(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("writing the do-not-call request failed: %r", task.exception(), extra={"call_id": call.call_id})

    call.on_do_not_call = write
    session.on(
        "user_input_transcribed",
        lambda ev: (
            call.hear_do_not_call(HeardBy.CALLER_WORDS)
            if ev.is_final and caller_asks_not_to_be_called(ev.transcript, agent_turn_before(session))
            else None
        ),
    )


def agent_turn_before(session: AgentSession) -> str:
    """What the agent said last: "don't call me, sir" right after "yes, sir" is about naming."""
    for item in reversed(session.history.items):
        if item.type == "message" and item.role == "assistant":
            return item.text_content or ""
    return ""


async def connect_call(call: CallState, agent: CallCenterAgent, lkapi: api.LiveKitAPI, settings: AgentSettings) -> bool:
    """With the session running: dial (outbound), greet, then start the recording.

    Returns False when an outbound call did not connect (outcome and SIP status are set).
    """
    request = call.request
    if request is not None and request.dial_by is not None and utcnow() > request.dial_by:
        # The dispatch waited for a worker past its deadline (the calling window's end, or
        # minutes in a queue): ringing now could break the window. The report says it failed,
        # and the dial ledger retries after backoff, inside the window.
        log.warning(
            "not dialing: the dispatch's deadline %s has passed",
            request.dial_by.isoformat(),
            extra={"call_id": call.call_id},
        )
        call.outcome = CallOutcome.FAILED
        return False
    if request is not None:
        result = await place_call(
            lkapi,
            request,
            room_name=call.control.room_name,
            trunk_id=settings.sip_outbound_trunk_id,
            trunk_name=settings.sip_outbound_trunk_name,
            max_call_duration_s=settings.max_call_duration_s,
        )
        call.sip_status_code = result.sip_status_code
        if not result.answered:
            call.outcome = result.outcome
            return False
        call.control.caller_identity = result.participant_identity
    else:
        call.sip_status_code = 200  # the SIP bridge answered before dispatching us
    mark_answered(call)

    greeting = agent.greet()
    if call.speaks_recording_notice:
        # the notice is heard before anything is recorded
        await greeting.wait_for_playout()
        if greeting.interrupted:
            return True  # the caller left during the notice: nothing to record
    try:
        await start_recording(lkapi, settings, call)
    except Exception:
        # a call without a recording is still a call: keep talking, the report says so
        log.exception("could not start the recording", extra={"call_id": call.call_id})
    return True


async def finish_call(
    call: CallState,
    history: llm.ChatContext,
    lkapi: api.LiveKitAPI,
    settings: AgentSettings,
    *,
    ended_at: datetime | None = None,
) -> SessionReport:
    """At shutdown: let Egress finalise the audio, then write the session report (last).
    ``ended_at``: when the call ended (default: now)."""
    ended_at = ended_at or utcnow()
    if call.payment is not None:
        await call.payment.close()  # a step still open at the hang-up starts no new segment
    if not await finish_recording(lkapi, call, settings=settings):
        call.recording_path = None  # do not point readers at a file that is not there
        call.recording = None
    heard = build_report(call, history, ended_at=ended_at, agent_name=settings.agent_name)
    report = redact_turns(heard)
    if settings.keep_raw_transcript and report is not heard:
        await write_raw_live_transcript(settings, heard)
    await upload_report(settings, report)
    return report


def new_call(
    control: CallControl, request: OutboundCallRequest | None, settings: AgentSettings, *, call_id: str | None = None
) -> CallState:
    """The call's state from the dispatch (outbound) or the inbound line's settings.
    ``call_id`` defaults to the dispatch's (outbound) or the room's name."""
    persona = load_persona(request.persona if request else settings.inbound_persona, settings.personas_dir)
    call_id = call_id or (request.call_id if request is not None else control.room_name)
    if request is not None:
        return CallState(
            call_id=call_id,
            direction=CallDirection.OUTBOUND,
            persona=persona,
            control=control,
            request=request,
            to_number=request.phone_number,
            from_number=request.caller_id,
            transfer_to=request.sip_transfer_to,
        )
    return CallState(
        call_id=call_id,
        direction=CallDirection.INBOUND,
        persona=persona,
        control=control,
        transfer_to=_as_uri(settings.inbound_transfer_number),
    )


def _as_uri(number: str | None) -> str | None:
    if not number:
        return None
    return number if number.startswith(("sip:", "tel:")) else f"tel:{number}"


def calls_load(max_calls: int):  # noqa: ANN201
    """The worker's load as its running calls over ``max_calls``: 1.0 (full) at the limit."""

    def load(server: AgentServer) -> float:
        return min(1.0, len(server.active_jobs) / max_calls)

    return load


def check_inbound_persona(settings: AgentSettings) -> None:
    """Refuse to start without the persona inbound callers hear: found at the first inbound call,
    the caller would get silence and a dropped line instead."""
    try:
        load_persona(settings.inbound_persona, settings.personas_dir)
    except (LookupError, ValueError) as exc:
        raise SystemExit(
            f"INBOUND_PERSONA={settings.inbound_persona!r} cannot be loaded from PERSONAS_DIR={settings.personas_dir}: {exc}"
        ) from None


def build_server(settings: AgentSettings) -> AgentServer:
    check_inbound_persona(settings)
    extra: dict = {}
    if settings.worker_max_calls:
        extra = {"load_fnc": calls_load(settings.worker_max_calls), "load_threshold": 1.0}
    server = AgentServer(
        **extra,
        setup_fnc=prewarm,
        drain_timeout=settings.drain_timeout_s,
        port=settings.worker_port,
        # shutdown callbacks wait for Egress to finalise and upload the report
        shutdown_process_timeout=120.0,
        initialize_process_timeout=60.0,
    )
    server.rtc_session(entrypoint, agent_name=settings.agent_name)
    return server


def main() -> None:
    cli.run_app(build_server(load_settings()))


if __name__ == "__main__":
    main()
