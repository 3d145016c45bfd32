"""Building the SessionReport from the session history that LiveKit stamps with metrics."""

from __future__ import annotations

from datetime import timedelta

from livekit import api
from livekit.agents import llm

from agent.call_control import CallControl
from agent.call_state import utcnow
from agent.session_report import build_report
from agent.settings import load_settings
from agent.worker import new_call
from callcenter.ids import new_call_id
from callcenter.outcomes import CallOutcome
from callcenter.report import Speaker, parse_report


def make_call():
    control = CallControl(api.LiveKitAPI("http://127.0.0.1:9", "k", "s" * 40), new_call_id())
    call = new_call(control, None, load_settings())
    return call


async def test_turns_are_relative_to_the_recording_and_latency_comes_from_metrics() -> None:
    call = make_call()
    t0 = utcnow()
    call.started_at, call.answered_at, call.recording_started_at = t0, t0, t0 + timedelta(seconds=2)
    call.recording_path = "recordings/x/audio.ogg"
    origin = call.recording_started_at.timestamp()
    ctx = llm.ChatContext()
    greeting = ctx.add_message(role="assistant", content="Hello, automated assistant here.")
    greeting.metrics = {"started_speaking_at": origin - 1.0, "stopped_speaking_at": origin + 0.5}
    user = ctx.add_message(role="user", content="When is my bill due?")
    user.metrics = {
        "started_speaking_at": origin + 1.0,
        "stopped_speaking_at": origin + 2.2,
        "transcription_delay": 0.31,
        "end_of_turn_delay": 0.45,
    }
    reply = ctx.add_message(role="assistant", content="On the first.")
    reply.metrics = {
        "started_speaking_at": origin + 2.9,
        "stopped_speaking_at": origin + 3.6,
        "llm_node_ttft": 0.12,
        "tts_node_ttfb": 0.08,
        "e2e_latency": 0.7,
    }
    ctx.add_message(role="system", content="not a turn")

    report = build_report(call, ctx, ended_at=t0 + timedelta(seconds=9), agent_name="call-center-agent")

    assert [(t.speaker, t.start, t.end) for t in report.turns] == [
        (Speaker.AGENT, 0.0, 0.5),  # spoken before recording started: clamped to its start
        (Speaker.CALLER, 1.0, 2.2),
        (Speaker.AGENT, 2.9, 3.6),
    ]
    [lat] = report.latency
    assert lat.turn_index == 2
    assert (lat.end_of_turn_ms, lat.eou_to_stt_final_ms, lat.llm_ttft_ms, lat.tts_ttfb_ms, lat.voice_to_voice_ms) == (
        450.0,
        310.0,
        120.0,
        80.0,
        700.0,
    )
    assert report.outcome is CallOutcome.ANSWERED and report.persona == "inbound_support"
    assert report.agent_first_spoke_at.timestamp() == origin - 1.0  # the greeting, before recording
    assert parse_report(report.model_dump_json()) == report  # what readers parse back


async def test_a_call_that_never_connected_has_no_turns_and_its_dial_outcome() -> None:
    call = make_call()
    call.outcome = CallOutcome.BUSY
    call.sip_status_code = 486
    report = build_report(call, llm.ChatContext(), ended_at=utcnow(), agent_name="a")
    assert report.turns == [] and report.latency == [] and report.agent_first_spoke_at is None
    assert (report.outcome, report.sip_status_code, report.answered_at) == (CallOutcome.BUSY, 486, None)
