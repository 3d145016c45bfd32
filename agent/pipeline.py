"""The voice pipeline from settings: STT, LLM, TTS, VAD and turn detection.

GKE: nvidia.STT (agent/riva_stt.py) → Riva (gRPC, no TLS in-cluster), openai.LLM → vLLM, openai.TTS → tts/ (Chatterbox).
Local: openai.STT → devstack/stt_server.py (faster-whisper), openai.LLM → llama.cpp server,
openai.TTS → tts/ (Piper). VAD (silero, ONNX shipped in the wheel) and the end-of-turn model
(LiveKit's v1-mini, shipped in livekit-local-inference) run in-process with no network.
"""

from __future__ import annotations

from typing import Any

from livekit.agents import AgentSession, llm, stt, tts, vad
from livekit.agents.voice.turn import TurnHandlingOptions
from livekit.plugins import openai, silero

from agent.riva_stt import RivaSTT
from agent.settings import AgentSettings, SttProvider


def build_stt(settings: AgentSettings) -> stt.STT:
    if settings.stt_provider is SttProvider.RIVA:
        # the plugin's STT, raising Riva's stream failures instead of going deaf (agent/riva_stt.py)
        return RivaSTT(
            server=settings.riva_server,
            use_ssl=settings.riva_use_ssl,
            model=settings.riva_model,
            language_code=settings.riva_language,
            sample_rate=settings.stt_sample_rate,
        )
    # the transcription endpoint is not streaming: AgentSession segments speech with the VAD
    return openai.STT(
        base_url=settings.stt_base_url,
        api_key=settings.stt_api_key.get_secret_value(),
        model=settings.stt_model,
        language="en",
        use_realtime=False,
    )


def build_llm(settings: AgentSettings) -> llm.LLM:
    return openai.LLM(
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value(),
        model=settings.llm_model,
        temperature=settings.llm_temperature,
    )


def build_tts(settings: AgentSettings) -> tts.TTS:
    return openai.TTS(
        base_url=settings.tts_base_url,
        api_key=settings.tts_api_key.get_secret_value(),
        model=settings.tts_model,
        voice=settings.tts_voice,
        response_format=settings.tts_response_format,  # type: ignore[arg-type]
    )


def load_vad(settings: AgentSettings | None = None) -> vad.VAD:
    """Silero VAD; load once per worker process (prewarm) and share across calls."""
    min_silence = settings.vad_min_silence_s if settings is not None else 0.4
    return silero.VAD.load(min_silence_duration=min_silence)


def turn_detector() -> Any:
    """LiveKit's on-device end-of-turn model (v1-mini): no gateway, no download."""
    from livekit.agents.inference import TurnDetector

    return TurnDetector(version="v1-mini", local_fallback=True)


def build_session(
    settings: AgentSettings,
    *,
    userdata: Any,
    vad_model: vad.VAD | None,
    with_audio: bool = True,
    semantic_turn_detection: bool = True,
    preemptive_generation: bool = True,
) -> AgentSession:
    """One AgentSession per call. ``with_audio=False`` gives a text-only session (tests)."""
    kwargs: dict[str, Any] = {"llm": build_llm(settings), "userdata": userdata, "max_tool_steps": 3}
    if with_audio:
        kwargs.update(stt=build_stt(settings), tts=build_tts(settings), vad=vad_model)
        turn: TurnHandlingOptions = {
            "turn_detection": turn_detector() if semantic_turn_detection else "vad",
            # the caller should not wait on a slow model for the end-of-turn decision
            "endpointing": {"min_delay": 0.3, "max_delay": 2.0},
            # "adaptive" interruption detection is a hosted model; VAD-based needs no network
            "interruption": {"mode": "vad"},
            # start the LLM on the final transcript, before the turn is confirmed
            "preemptive_generation": {"enabled": preemptive_generation},
        }
        kwargs["turn_handling"] = turn
    else:
        kwargs["vad"] = None
        kwargs["turn_handling"] = {"turn_detection": None}
    return AgentSession(**kwargs)
