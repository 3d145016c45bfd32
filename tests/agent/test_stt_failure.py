"""Speech recognition fails mid-call (Riva down): the caller hears an apology and is transferred
or hung up on; the session report says why.

Fault injection: an STT double whose stream cannot connect, inside a real AgentSession. The
framework's own retry and error path runs (STTError recoverable, then not; the stream recreated;
the session closing itself after ``max_unrecoverable_errors``), so the test sees the production
sequence of ``error`` events, not a hand-made one. Telephony lands on the LiveKit Twirp double.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

import pytest
from livekit import api
from livekit.agents import AgentSession, APIConnectionError, APIConnectOptions, stt
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, NOT_GIVEN
from livekit.agents.voice.agent_session import SessionConnectOptions

from agent.call_agent import CallCenterAgent, mark_answered
from agent.call_control import CallControl
from agent.pipeline import build_llm
from agent.session_report import build_report
from agent.settings import AgentSettings
from agent.stt_failure import APOLOGY_END, APOLOGY_TRANSFER, SttFailureGuard
from agent.worker import new_call
from callcenter.ids import new_call_id
from callcenter.outcomes import CallOutcome
from doubles.livekit_server import LiveKitDouble
from doubles.llm_server import ScriptedLLM

pytestmark = pytest.mark.timeout(60)

CALLER = "sip_+14155550199"


class _UnreachableStream(stt.RecognizeStream):
    async def _run(self) -> None:
        raise APIConnectionError("riva-stt:50051 unreachable")


class UnreachableSTT(stt.STT):
    """Riva that cannot be reached: every stream fails to connect."""

    def __init__(self) -> None:
        super().__init__(capabilities=stt.STTCapabilities(streaming=True, interim_results=True))
        self.streams = 0

    @property
    def model(self) -> str:
        return "parakeet-test"

    @property
    def provider(self) -> str:
        return "riva"

    async def _recognize_impl(self, buffer, *, language=NOT_GIVEN, conn_options=DEFAULT_API_CONNECT_OPTIONS):  # noqa: ANN001, ANN202
        raise APIConnectionError("riva-stt:50051 unreachable")

    def stream(self, *, language=NOT_GIVEN, conn_options=DEFAULT_API_CONNECT_OPTIONS) -> stt.RecognizeStream:  # noqa: ANN001
        self.streams += 1
        return _UnreachableStream(stt=self, conn_options=conn_options, sample_rate=None)


async def _call_with_failing_stt(settings: AgentSettings, double: LiveKitDouble, transfer: bool):  # noqa: ANN202
    lkapi = api.LiveKitAPI(double.url, double.api_key, double.api_secret)
    control = CallControl(lkapi, new_call_id())
    call = new_call(control, None, settings)
    control.caller_identity = CALLER
    mark_answered(call)
    if not transfer:
        call.transfer_to = None
    session = AgentSession(
        stt=UnreachableSTT(),
        llm=build_llm(settings),
        userdata=call,
        vad=None,
        turn_handling={"turn_detection": None},
        # the plugin's retries, shortened: one retry 50 ms apart, then unrecoverable
        conn_options=SessionConnectOptions(stt_conn_options=APIConnectOptions(max_retry=1, retry_interval=0.05)),
    )
    agent = CallCenterAgent(call)
    guard = SttFailureGuard(session, agent)
    closed = asyncio.Event()
    session.on("close", lambda _ev: closed.set())
    await session.start(agent)
    return lkapi, session, agent, guard, closed


def _spoken(session: AgentSession) -> list[str]:
    return [m.text_content for m in session.history.items if m.type == "message" and m.role == "assistant"]


async def test_stt_failure_apologises_and_transfers_to_the_human_queue(
    agent_settings: AgentSettings,
    scripted_llm: ScriptedLLM,
    livekit_double: LiveKitDouble,
    caplog: pytest.LogCaptureFixture,
) -> None:
    scripted_llm.script([])
    caplog.set_level(logging.INFO, logger="agent.stt_failure")
    lkapi, session, agent, guard, _closed = await _call_with_failing_stt(agent_settings, livekit_double, transfer=True)
    try:
        await asyncio.wait_for(agent.call.control.finished.wait(), 20)
        await guard.wait()
        assert _spoken(session) == [APOLOGY_TRANSFER]
        [transfer] = livekit_double.calls("SIP", "TransferSIPParticipant")
        assert transfer.message.participant_identity == CALLER
        assert transfer.message.transfer_to == "tel:+14155550100"
        assert agent.call.outcome is CallOutcome.TRANSFERRED
        report = build_report(agent.call, session.history, ended_at=datetime.now(UTC), agent_name="test")
        assert report.agent_error == "speech recognition failed (riva parakeet-test: APIConnectionError)"
        assert report.transferred_to == "tel:+14155550100"
        logged = [r.getMessage() for r in caplog.records if r.name == "agent.stt_failure"]
        assert any("speech recognition failed" in m and "transferring" in m for m in logged)
        assert not any("+1415" in m or "unreachable" in m for m in logged)  # no number, no error text
    finally:
        await session.aclose()
        await lkapi.aclose()


async def test_stt_failure_without_a_transfer_target_apologises_and_hangs_up(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([])
    lkapi, session, agent, guard, closed = await _call_with_failing_stt(agent_settings, livekit_double, transfer=False)
    try:
        await asyncio.wait_for(agent.call.control.finished.wait(), 20)
        await guard.wait()
        assert _spoken(session) == [APOLOGY_END]
        [delete] = livekit_double.calls("RoomService", "DeleteRoom")
        assert delete.message.room == agent.call.call_id
        assert livekit_double.calls("SIP", "TransferSIPParticipant") == []
        report = build_report(agent.call, session.history, ended_at=datetime.now(UTC), agent_name="test")
        assert report.agent_error.startswith("speech recognition failed")
        # the framework gives up on the session too, after its own count of failures: the
        # apology and the hang-up came first, once
        await asyncio.wait_for(closed.wait(), 20)
        assert _spoken(session) == [APOLOGY_END]
        assert len(livekit_double.calls("RoomService", "DeleteRoom")) == 1
    finally:
        await session.aclose()
        await lkapi.aclose()


async def test_a_retried_stt_hiccup_is_not_a_failure(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    """Recoverable errors (the plugin is retrying) leave the call alone."""
    from livekit.agents.voice.events import ErrorEvent

    scripted_llm.script([])
    lkapi = api.LiveKitAPI(livekit_double.url, livekit_double.api_key, livekit_double.api_secret)
    call = new_call(CallControl(lkapi, new_call_id()), None, agent_settings)
    session = AgentSession(
        llm=build_llm(agent_settings), userdata=call, vad=None, turn_handling={"turn_detection": None}
    )
    agent = CallCenterAgent(call)
    guard = SttFailureGuard(session, agent)
    await session.start(agent)
    try:
        source = UnreachableSTT()
        hiccup = stt.STTError(timestamp=0.0, label="riva", error=APIConnectionError("blip"), recoverable=True)
        session.emit("error", ErrorEvent(error=hiccup, source=source))
        await asyncio.sleep(0.1)
        assert guard.task is None and call.agent_error is None and _spoken(session) == []
    finally:
        await session.aclose()
        await lkapi.aclose()
