"""Proof that the inference services answer, not just that their pods are Ready.

Each probe makes the smallest real request a caller would: Riva's gRPC health and a short
offline recognition (``nvidia-riva-client``), vLLM's model list and a one-token completion
(the ``openai`` client, as the agent uses it), and the TTS server's ``/ready`` and a short
synthesis. Latencies go into the asset check's metadata.
"""

from __future__ import annotations

import time
import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg
import grpc
import httpx
import openai

from callcenter import riva as riva_models

PROBE_AUDIO = Path(__file__).parent / "probe_audio" / "hello.wav"


@dataclass
class ProbeResult:
    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def _ms(start: float) -> float:
    return round((time.perf_counter() - start) * 1000, 1)


class InferenceEndpoints(dg.ConfigurableResource):
    """Where the GPU services answer, as the Dagster pods see them (cluster DNS on GKE)."""

    riva_uri: str = "riva-stt.call-center.svc.cluster.local:50051"
    riva_language: str = riva_models.LANGUAGE_CODE
    # The models the agent (streaming) and post-call (offline) ask for: callcenter/riva.py, the one home
    riva_streaming_model: str = riva_models.STREAMING_MODEL
    riva_offline_model: str = riva_models.OFFLINE_MODEL
    vllm_base_url: str = "http://vllm.call-center.svc.cluster.local:8000/v1"
    vllm_model: str = "meta-llama/Llama-3.1-8B-Instruct"
    tts_base_url: str = "http://chatterbox-tts.call-center.svc.cluster.local:8880"
    tts_model: str = "chatterbox"
    tts_voice: str = "default"
    timeout_s: float = 30.0

    # --- Riva -------------------------------------------------------------------------
    def probe_riva(self) -> ProbeResult:
        import riva.client
        from riva.client.proto import health_pb2, health_pb2_grpc

        meta: dict[str, Any] = {"riva_uri": self.riva_uri}
        channel = grpc.insecure_channel(self.riva_uri)
        try:
            start = time.perf_counter()
            try:
                health = health_pb2_grpc.HealthStub(channel).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=self.timeout_s
                )
            except grpc.RpcError as e:
                return ProbeResult(False, f"Riva at {self.riva_uri} did not answer gRPC health: {e.code().name} {e.details()}", meta)
            meta["health_ms"] = _ms(start)
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
            meta["health_status"] = status
            if status != "SERVING":
                return ProbeResult(False, f"Riva at {self.riva_uri} reports {status}", meta)

            # Riva answers a request for a model it does not serve with an error, mid-call for the
            # agent: the gate names the model missing instead.
            from riva.client.proto import riva_asr_pb2, riva_asr_pb2_grpc

            try:
                listing = riva_asr_pb2_grpc.RivaSpeechRecognitionStub(channel).GetRivaSpeechRecognitionConfig(
                    riva_asr_pb2.RivaSpeechRecognitionConfigRequest(), timeout=self.timeout_s
                )
            except grpc.RpcError as e:
                return ProbeResult(False, f"Riva did not list its ASR models: {e.code().name} {e.details()}", meta)
            served = sorted({c.model_name for c in listing.model_config})
            meta["served_models"] = ", ".join(served)
            missing = [m for m in (self.riva_streaming_model, self.riva_offline_model) if m not in served]
            if missing:
                return ProbeResult(
                    False,
                    f"Riva does not serve {missing} (the agent streams to {self.riva_streaming_model!r}, post-call "
                    f"sends recordings to {self.riva_offline_model!r}); it serves {served}: check the model "
                    "repository's RMIRs (riva-model-init)",
                    meta,
                )

            with wave.open(str(PROBE_AUDIO), "rb") as wav:
                rate, audio = wav.getframerate(), wav.readframes(wav.getnframes())
            config = riva.client.RecognitionConfig(
                encoding=riva.client.AudioEncoding.LINEAR_PCM,
                sample_rate_hertz=rate,
                audio_channel_count=1,
                language_code=self.riva_language,
                max_alternatives=1,
                model=self.riva_offline_model,
            )
            auth = riva.client.Auth(uri=self.riva_uri)
            start = time.perf_counter()
            try:
                response = riva.client.ASRService(auth).offline_recognize(audio, config)
            except grpc.RpcError as e:
                return ProbeResult(False, f"Riva recognition failed: {e.code().name} {e.details()}", meta)
            finally:
                auth.channel.close()
            meta["recognition_ms"] = _ms(start)
            transcript = " ".join(
                r.alternatives[0].transcript.strip() for r in response.results if r.alternatives
            ).strip()
            meta["transcript"] = transcript
            if not transcript:
                return ProbeResult(False, "Riva answered a 2 s greeting with an empty transcript: is the ASR model loaded?", meta)
            return ProbeResult(True, f"Riva is serving and heard {transcript!r}", meta)
        finally:
            channel.close()

    # --- vLLM -------------------------------------------------------------------------
    def probe_vllm(self) -> ProbeResult:
        meta: dict[str, Any] = {"vllm_base_url": self.vllm_base_url, "model": self.vllm_model}
        client = openai.OpenAI(base_url=self.vllm_base_url, api_key="unused", timeout=self.timeout_s, max_retries=0)
        try:
            start = time.perf_counter()
            try:
                served = [m.id for m in client.models.list()]
            except openai.OpenAIError as e:
                return ProbeResult(False, f"vLLM at {self.vllm_base_url} did not list models: {e}", meta)
            meta["models_ms"] = _ms(start)
            meta["served_models"] = ", ".join(served)
            if self.vllm_model not in served:
                return ProbeResult(False, f"vLLM serves {served}, not {self.vllm_model!r}", meta)
            start = time.perf_counter()
            try:
                completion = client.completions.create(model=self.vllm_model, prompt="Hello", max_tokens=1, temperature=0)
            except openai.OpenAIError as e:
                return ProbeResult(False, f"vLLM one-token completion failed: {e}", meta)
            meta["completion_ms"] = _ms(start)
            if not completion.choices:
                return ProbeResult(False, "vLLM answered a completion with no choices", meta)
            meta["completion_tokens"] = completion.usage.completion_tokens if completion.usage else None
            return ProbeResult(True, f"vLLM serves {self.vllm_model} and completes", meta)
        finally:
            client.close()

    # --- TTS --------------------------------------------------------------------------
    def probe_tts(self) -> ProbeResult:
        meta: dict[str, Any] = {"tts_base_url": self.tts_base_url, "voice": self.tts_voice}
        start = time.perf_counter()
        try:
            ready = httpx.get(f"{self.tts_base_url}/ready", timeout=self.timeout_s)
        except httpx.HTTPError as e:
            return ProbeResult(False, f"TTS at {self.tts_base_url} did not answer /ready: {e}", meta)
        meta["ready_ms"] = _ms(start)
        if ready.status_code != 200:
            return ProbeResult(False, f"TTS /ready answered {ready.status_code}: {ready.text[:200]}", meta)
        client = openai.OpenAI(base_url=f"{self.tts_base_url}/v1", api_key="unused", timeout=self.timeout_s, max_retries=0)
        try:
            start = time.perf_counter()
            try:
                speech = client.audio.speech.create(
                    model=self.tts_model, voice=self.tts_voice, input="Hello.", response_format="wav"
                )
            except openai.OpenAIError as e:
                return ProbeResult(False, f"TTS synthesis failed: {e}", meta)
            audio = speech.content
            meta["synthesis_ms"] = _ms(start)
            meta["audio_bytes"] = len(audio)
            if not audio.startswith(b"RIFF") or len(audio) <= 44:
                return ProbeResult(False, f"TTS returned {len(audio)} bytes that are not a WAV with audio", meta)
            return ProbeResult(True, "TTS is ready and synthesizes", meta)
        finally:
            client.close()
