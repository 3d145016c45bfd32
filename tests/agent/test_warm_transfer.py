"""Warm transfer with a summary handoff (agent/warm_transfer.py on LiveKit's WarmTransferTask).

The call runs in text mode (real AgentSession, the real openai.LLM against the scripted server)
inside a job context whose room is a real room on the real livekit-server: the hold music is
published there, and the consult room the SDK opens for the human is a real room too. The SIP
leg (CreateSIPParticipant) and MoveParticipant go to the Twirp double, signed with the server's
own keys: livekit-sip cannot be built here, and livekit-server v1.13.5 answers MoveParticipant
"not implemented" (its RoomManager; LiveKit Cloud implements it), so the human answering and
being moved are the double's doing, as scripted per test.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import pytest
from livekit import api, rtc
from livekit.agents.testing import fake_job_context
from livekit.agents.utils import http_context
from livekit.protocol import room as room_proto
from livekit.protocol import sip

from agent.personas import Persona, WarmTransfer, load_persona
from agent.session_report import build_report
from agent.settings import AgentSettings
from agent.warm_transfer import CallCenterWarmTransfer, briefing_context, parse_callback_time, sip_call_to
from callcenter.outcomes import CallOutcome
from callcenter.report import TransferStepName, parse_report
from devstack.livekit import LocalLiveKit
from doubles.livekit_server import LiveKitDouble, TwirpFailure, sip_failure
from doubles.llm_server import CallTool, Rule, Say, ScriptedLLM
from tests.agent.conftest import TextCall, text_call

pytestmark = pytest.mark.timeout(60)

HUMAN = "+14155550100"  # agent_settings' inbound transfer number
TRUNK = "ST_transfer"
SUMMARY = "Hi, the caller is asking about a charge on last month's bill and wants a person."
CARD = "4111 1111 1111 1111"


@pytest.fixture
def sip_double(real_livekit: LocalLiveKit, monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """The Twirp double with the real server's keys; the job's API (LIVEKIT_URL) points at it."""
    with LiveKitDouble(api_key=real_livekit.api_key, api_secret=real_livekit.api_secret) as double:
        double.outbound_trunks[TRUNK] = sip.SIPOutboundTrunkInfo(sip_trunk_id=TRUNK, name="callcenter-outbound")
        monkeypatch.setenv("LIVEKIT_URL", double.url)
        monkeypatch.setenv("LIVEKIT_API_KEY", real_livekit.api_key)
        monkeypatch.setenv("LIVEKIT_API_SECRET", real_livekit.api_secret)
        yield double


def with_warm_transfer(settings: AgentSettings, **fields: object) -> Persona:
    persona = load_persona(settings.inbound_persona, settings.personas_dir)
    return persona.model_copy(update={"warm_transfer": WarmTransfer(ringing_timeout_s=5, **fields)})


@asynccontextmanager
async def warm_call(
    settings: AgentSettings, double: LiveKitDouble, lk: LocalLiveKit, *, connect: str = "move"
) -> AsyncIterator[tuple[TextCall, rtc.Room]]:
    """An inbound text-mode call whose job room is a real room on the real server. The connect
    step is LiveKit Cloud's MoveParticipant, played by the double; the self-hosted bridge carries
    audio, so it is tested end to end (tests/e2e/test_warm_transfer.py)."""
    http_context._new_session_ctx()
    async with text_call(settings, double) as tc:
        tc.call.persona = with_warm_transfer(settings, connect=connect)
        tc.call.control.trunk_id = TRUNK
        room = rtc.Room()
        token = (
            api.AccessToken(lk.api_key, lk.api_secret)
            .with_identity(f"agent-{tc.call.call_id}")
            .with_kind("agent")
            .with_grants(api.VideoGrants(room_join=True, room=tc.call.call_id))
            .to_jwt()
        )
        await room.connect(lk.url, token)
        try:
            with fake_job_context(room=room) as jc:
                jc._info.url = lk.url  # the consult room is on the same server
                jc._info.fake_job = False  # a fake job plays no hold music
                yield tc, room
        finally:
            await room.disconnect()
            await http_context._close_http_ctx()


async def until(predicate, timeout_s: float = 20.0) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def caller_says(tc: TextCall, text: str) -> None:
    """The caller's turn, without ``session.run``: a run's result is the last AgentTask's, and
    the transfer task's ToolError (handled by the tool) would be raised from it."""
    tc.session.generate_reply(user_input=text)
    await asyncio.sleep(0)


def offered(tc: TextCall) -> bool:
    """The caller heard the callback offer (the transfer found nobody)."""
    offer = tc.call.persona.warm_transfer.callback_offer
    return offer in assistant_texts(tc.session)


def steps(tc: TextCall) -> list[str]:
    return [s.step.value for s in tc.call.transfer_steps]


def assistant_texts(session) -> list[str]:  # noqa: ANN001
    return [m.text_content for m in session.history.items if m.type == "message" and m.role == "assistant"]


async def test_the_human_answers_is_briefed_from_a_redacted_history_connected_and_the_agent_leaves(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, sip_double: LiveKitDouble, real_livekit: LocalLiveKit
) -> None:
    moved: list[room_proto.MoveParticipantRequest] = []

    def move(req: room_proto.MoveParticipantRequest, _claims: dict) -> room_proto.MoveParticipantResponse:
        moved.append(req)
        return room_proto.MoveParticipantResponse()

    sip_double.on("RoomService", "MoveParticipant", move)
    scripted_llm.script(
        [
            Rule(r"person", CallTool("transfer_to_human")),
            Rule(r"Sam here", Say(SUMMARY)),
            Rule(r"put them through", CallTool("connect_to_caller")),
        ]
    )
    async with warm_call(agent_settings, sip_double, real_livekit) as (tc, room):
        await caller_says(tc, f"My card {CARD} was charged twice. Can I talk to a person?")
        await until(lambda: isinstance(tc.session.current_agent, CallCenterWarmTransfer))
        task = tc.session.current_agent
        await until(lambda: task._human_agent_sess is not None)
        assert steps(tc) == ["hold_started", "dialled", "answered"]
        # the caller hears hold music: a track the agent publishes in the caller's room
        assert any(p.kind == rtc.TrackKind.KIND_AUDIO for p in room.local_participant.track_publications.values())
        [dial] = sip_double.calls("SIP", "CreateSIPParticipant")
        assert dial.message.sip_call_to == HUMAN and dial.message.sip_trunk_id == TRUNK
        assert dial.message.room_name == f"{tc.call.call_id}-human-agent" and dial.message.wait_until_answered

        human = task._human_agent_sess
        human.output.set_audio_enabled(False)  # text mode: the human hears the briefing as text
        await human.run(user_input="Hello, Sam here.")
        assert assistant_texts(human)[-1] == SUMMARY
        human.generate_reply(user_input="Okay, put them through.")
        await asyncio.wait_for(tc.call.control.finished.wait(), 20)

        [move_req] = moved
        assert move_req.room == f"{tc.call.call_id}-human-agent" and move_req.destination_room == tc.call.call_id
        assert steps(tc) == ["hold_started", "dialled", "answered", "briefed", "connected", "agent_left"]
        assert tc.call.outcome is CallOutcome.TRANSFERRED and tc.call.transferred_to == f"tel:{HUMAN}"
        assert "hold" in assistant_texts(tc.session)[-1]  # the caller heard "please hold" before the music
        assert not sip_double.calls("SIP", "TransferSIPParticipant")  # no cold transfer

        report = build_report(tc.call, tc.session.history, ended_at=datetime.now(UTC), agent_name="t")
        report = parse_report(report.model_dump_json())
        assert [s.step for s in report.transfer_steps][-1] is TransferStepName.AGENT_LEFT
        times = [s.at for s in report.transfer_steps]
        assert times == sorted(times)
        assert report.callback_requested is None

    # the model that briefed the human saw the call, never the card's digits
    briefing = [r for r in scripted_llm.requests if "Conversation history with caller" in r["messages"][0]["content"]]
    assert briefing
    for request in briefing:
        assert "charged twice" in request["messages"][0]["content"]
        assert "4111" not in str(request)


async def test_nobody_answers_the_caller_hears_so_and_a_callback_they_accept_is_in_the_report(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, sip_double: LiveKitDouble, real_livekit: LocalLiveKit
) -> None:
    sip_double.sip_outcomes[HUMAN] = sip_failure(480, "Temporarily Unavailable")
    when = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    scripted_llm.script(
        [
            Rule(r"person", CallTool("transfer_to_human")),
            Rule(r"call me back", CallTool("schedule_callback", {"when": when.isoformat()})),
        ]
    )
    async with warm_call(agent_settings, sip_double, real_livekit) as (tc, _room):
        await caller_says(tc, "Can I talk to a person?")
        await until(lambda: offered(tc))
        assert steps(tc) == ["hold_started", "dialled", "failed", "returned_to_caller"]
        assert tc.call.transfer_steps[2].detail == "sip 480"
        assert assistant_texts(tc.session)[-1] == tc.call.persona.warm_transfer.callback_offer
        assert tc.call.outcome is None and not tc.call.control.finished.is_set()  # still on the line

        await asyncio.wait_for(tc.session.run(user_input="Yes please, call me back tomorrow."), 30)
        assert tc.call.callback_requested == when
        report = build_report(tc.call, tc.session.history, ended_at=datetime.now(UTC), agent_name="t")
        report = parse_report(report.model_dump_json())
        assert report.callback_requested == when
        assert [s.step.value for s in report.transfer_steps] == [
            "hold_started",
            "dialled",
            "failed",
            "returned_to_caller",
        ]
        assert report.outcome is CallOutcome.ANSWERED


async def test_no_sip_service_and_a_refused_move_both_return_to_the_caller(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, sip_double: LiveKitDouble, real_livekit: LocalLiveKit
) -> None:
    """What the real livekit-server v1.13.5 answers without livekit-sip (no SIP service on the bus)
    and for MoveParticipant (not implemented), played by the double."""
    sip_double.sip_outcomes[HUMAN] = TwirpFailure("unavailable", "no response from servers", 503)
    scripted_llm.script([Rule(r"person", CallTool("transfer_to_human"))])
    async with warm_call(agent_settings, sip_double, real_livekit) as (tc, _room):
        await caller_says(tc, "A person please.")
        await until(lambda: offered(tc))
        assert steps(tc) == ["hold_started", "dialled", "failed", "returned_to_caller"]
        assert tc.call.transfer_steps[2].detail == "livekit unavailable"

    def refuse(_req, _claims):  # noqa: ANN001, ANN202
        raise TwirpFailure("unknown", "not implemented", 500)

    sip_double.sip_outcomes.clear()
    sip_double.on("RoomService", "MoveParticipant", refuse)
    scripted_llm.script(
        [Rule(r"person", CallTool("transfer_to_human")), Rule(r"put them through", CallTool("connect_to_caller"))]
    )
    async with warm_call(agent_settings, sip_double, real_livekit) as (tc, _room):
        await caller_says(tc, "A person please.")
        await until(lambda: isinstance(tc.session.current_agent, CallCenterWarmTransfer))
        task = tc.session.current_agent
        await until(lambda: task._human_agent_sess is not None)
        task._human_agent_sess.output.set_audio_enabled(False)
        task._human_agent_sess.generate_reply(user_input="Sure, put them through.")
        await until(lambda: offered(tc))
        assert steps(tc) == ["hold_started", "dialled", "answered", "failed", "returned_to_caller"]
        assert tc.call.transfer_steps[3].detail == "move livekit unknown"
        assert tc.call.outcome is None and not tc.call.control.finished.is_set()


def test_briefing_history_is_redacted_and_holds_only_the_conversation() -> None:
    from livekit.agents import llm

    history = llm.ChatContext.empty()
    history.add_message(role="system", content="You are Ava.")
    history.add_message(role="assistant", content="What is the card number?")
    history.add_message(role="user", content="4111 1111")
    history.add_message(role="user", content="1111 1111, and my social is 078-05-1120")
    briefed = briefing_context(history)
    said = [(m.role, m.text_content) for m in briefed.messages()]
    assert [r for r, _ in said] == ["assistant", "user", "user"]
    assert not any(ch.isdigit() for _, text in said[1:] for ch in text), said


def test_callback_times_and_the_number_dialled() -> None:
    now = datetime(2026, 12, 4, 20, 0, tzinfo=UTC)
    assert parse_callback_time("asap", now=now) == "asap"
    assert parse_callback_time("2026-12-05T10:00:00-05:00", now=now) == datetime(2026, 12, 5, 15, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="offset"):
        parse_callback_time("2026-12-05T10:00:00", now=now)
    with pytest.raises(ValueError, match="past"):
        parse_callback_time("2026-12-01T10:00:00+00:00", now=now)
    with pytest.raises(ValueError, match="not a time"):
        parse_callback_time("tomorrow morning", now=now)
    assert sip_call_to("tel:+14155550100") == "+14155550100"
    assert sip_call_to("sip:queue@pbx.example.com") == "sip:queue@pbx.example.com"
