"""One spoken turn through the real audio pipeline: a caller's WAV on a simulated 8 kHz line →
silero VAD + LiveKit's local turn model → devstack STT (faster-whisper) → scripted LLM →
tts/ server (Piper) → captured audio, which is transcribed back. The session report must
carry the turn's stage latencies."""

from __future__ import annotations

import asyncio
import io
import re
import time

import httpx
import pytest
from livekit import api

from agent.call_agent import CallCenterAgent, mark_answered
from agent.call_control import CallControl
from agent.call_state import utcnow
from agent.local_audio import CapturedAudioOutput, LineAudioInput, read_wav
from agent.pipeline import build_session, load_vad
from agent.session_report import build_report
from agent.settings import AgentSettings, SttProvider
from agent.worker import new_call
from callcenter.ids import new_call_id
from callcenter.report import Speaker
from doubles.llm_server import Rule, Say, ScriptedLLM

pytestmark = [pytest.mark.xdist_group("agent_audio"), pytest.mark.timeout(120)]

CALLER_SAYS = "Hi, I have a question about my electricity bill."
AGENT_REPLY = "Your bill is due on the first day of each month."


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def synthesize(tts_base_url: str, text: str) -> bytes:
    resp = httpx.post(
        f"{tts_base_url}/audio/speech",
        json={"model": "piper", "voice": "joe", "input": text, "response_format": "wav", "stream": False},
        timeout=60,
    )
    resp.raise_for_status()
    return resp.content


def transcribe(stt_base_url: str, wav: bytes) -> str:
    resp = httpx.post(
        f"{stt_base_url}/audio/transcriptions",
        files={"file": ("reply.wav", wav, "audio/wav")},
        data={"model": "tiny.en"},
        timeout=60,
    )
    resp.raise_for_status()
    return resp.json()["text"]


def _agent_turn_recorded(session) -> bool:
    return any(item.type == "message" and item.role == "assistant" for item in session.history.items)


async def test_one_spoken_turn_is_answered_aloud_and_measured(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, stt_server: str, tts_server: str, tmp_path
) -> None:
    scripted_llm.script([Rule(r"\w", Say(AGENT_REPLY))])
    settings = agent_settings.model_copy(
        update={
            "stt_provider": SttProvider.OPENAI,
            "stt_base_url": stt_server,
            "tts_base_url": tts_server,
            "tts_model": "piper",
            "tts_voice": "joe",
        }
    )
    caller_wav = tmp_path / "caller.wav"
    caller_wav.write_bytes(synthesize(tts_server, CALLER_SAYS))
    pcm, rate = read_wav(caller_wav)

    lkapi = api.LiveKitAPI("http://127.0.0.1:9", "unused", "unused-secret-unused-secret-unused")
    call = new_call(CallControl(lkapi, new_call_id()), None, settings)
    mark_answered(call)
    session = build_session(settings, userdata=call, vad_model=load_vad(settings))
    line, earpiece = LineAudioInput(sample_rate=8000), CapturedAudioOutput()
    session.input.audio, session.output.audio = line, earpiece
    try:
        await session.start(CallCenterAgent(call))
        await asyncio.sleep(0.5)  # a moment of line noise floor before the caller talks
        line.say_pcm(pcm, rate)
        deadline = time.monotonic() + 60
        # Played out, and the reply is in the history (added by the session's own task once
        # playout ends: a report built before that would miss the agent's turn).
        while not (earpiece.replies and earpiece._current is None and _agent_turn_recorded(session)):
            assert time.monotonic() < deadline, "the agent never answered aloud"
            await asyncio.sleep(0.05)
        reply_wav = earpiece.reply_wav(0)
        report = build_report(call, session.history, ended_at=utcnow(), agent_name=settings.agent_name)
    finally:
        line.close()
        await session.aclose()
        await lkapi.aclose()

    heard = transcribe(stt_server, reply_wav)
    # Piper → tiny.en round trip: most of the reply's words must come back
    assert len({"bill", "due", "first", "day", "month"} & words(heard)) >= 4, heard

    caller_turns = [t for t in report.turns if t.speaker is Speaker.CALLER]
    agent_turns = [t for t in report.turns if t.speaker is Speaker.AGENT]
    assert len(caller_turns) == 1
    assert len({"question", "electricity", "bill", "have"} & words(caller_turns[0].text)) >= 2, caller_turns[0].text
    assert agent_turns[0].text == AGENT_REPLY
    assert caller_turns[0].end <= agent_turns[0].start  # the agent spoke after the caller stopped

    [latency] = report.latency
    for stage in ("end_of_turn_ms", "eou_to_stt_final_ms", "llm_ttft_ms", "tts_ttfb_ms", "voice_to_voice_ms"):
        value = getattr(latency, stage)
        assert value is not None and value > 0, (stage, latency)
    # voice-to-voice spans the wait for the end of turn and the reply's first audio
    assert latency.voice_to_voice_ms >= latency.end_of_turn_ms
    assert latency.voice_to_voice_ms >= latency.llm_ttft_ms + latency.tts_ttfb_ms
    assert latency.voice_to_voice_ms < 15_000
    assert io.BytesIO(reply_wav).getbuffer().nbytes > 8000  # real audio, not a click
