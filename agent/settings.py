"""Typed settings of the agent worker, from the environment (Kubernetes ConfigMap/Secret or devstack).

Every endpoint and model name lives here, so the GKE stack (Riva, vLLM, Chatterbox) and the
embedded local stack (faster-whisper endpoint, llama.cpp server, tts/ with Piper) run the
same agent code. Read once per worker process (``load_settings``), never at import time.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from callcenter import riva as riva_models
from callcenter.dispatch import AGENT_NAME, MAX_CALL_DURATION_S, OUTBOUND_TRUNK_NAME

PERSONAS_DIR = Path(__file__).resolve().parent / "personas"


class SttProvider(StrEnum):
    RIVA = "riva"  # nvidia.STT, gRPC streaming (GKE)
    OPENAI = "openai"  # openai.STT against an OpenAI-compatible /v1/audio/transcriptions (local)


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", case_sensitive=False)

    # --- worker ---------------------------------------------------------------------------
    agent_name: str = Field(AGENT_NAME, description="explicit-dispatch name (SIP dispatch rule, agent dispatch)")
    drain_timeout_s: int = Field(
        1800, ge=0, description="SIGTERM: seconds running calls may take to finish; pod grace period must be >= this"
    )
    worker_port: int = Field(8081, description="the worker's health/HTTP port (readiness + liveness probes)")
    worker_max_calls: int | None = Field(
        None,
        gt=0,
        description="when set, the worker's load is its running calls over this (full at the limit) instead of "
        "its CPU use; the local stack sets it, where the models share the worker's CPU and a busy core would "
        "turn every dispatch away (LiveKit does not offer a refused room's job again)",
    )
    livekit_url: str = ""
    livekit_api_key: str = ""
    livekit_api_secret: SecretStr = SecretStr("")

    # --- speech to text -------------------------------------------------------------------
    stt_provider: SttProvider = SttProvider.RIVA
    riva_server: str = "riva:50051"
    riva_use_ssl: bool = False  # in-cluster gRPC, no TLS
    # callcenter/riva.py names the model once: the rollout's health gate asks Riva for the same one
    riva_model: str = riva_models.STREAMING_MODEL
    riva_language: str = riva_models.LANGUAGE_CODE
    # telephony audio is 8 kHz narrowband; upsampling it gains nothing and costs bandwidth
    stt_sample_rate: int = 8000
    stt_base_url: str = Field(
        "http://127.0.0.1:8090/v1",
        validation_alias=AliasChoices("STT_BASE_URL", "CALLCENTER_STT_BASE_URL", "stt_base_url"),
    )
    stt_model: str = "tiny.en"
    stt_api_key: SecretStr = SecretStr("unused")

    # VAD silence that ends an utterance (silero default 0.55 s); with the turn model guarding
    # against mid-sentence pauses, a shorter wait gets the transcript to the LLM sooner
    vad_min_silence_s: float = Field(0.4, gt=0.05, le=2.0)

    # --- language model -------------------------------------------------------------------
    llm_base_url: str = Field(
        "http://vllm:8000/v1", validation_alias=AliasChoices("LLM_BASE_URL", "CALLCENTER_LLM_BASE_URL", "llm_base_url")
    )
    llm_model: str = Field(
        "meta-llama/Llama-3.1-8B-Instruct",
        validation_alias=AliasChoices("LLM_MODEL", "CALLCENTER_LLM_MODEL", "llm_model"),
    )
    llm_api_key: SecretStr = SecretStr("unused")  # vLLM without --api-key ignores it
    llm_temperature: float = Field(0.3, ge=0, le=2)

    # --- text to speech -------------------------------------------------------------------
    tts_base_url: str = Field(
        "http://tts:8880/v1", validation_alias=AliasChoices("TTS_BASE_URL", "CALLCENTER_TTS_BASE_URL", "tts_base_url")
    )
    tts_model: str = "chatterbox"
    tts_voice: str = "default"
    tts_response_format: str = "wav"
    tts_api_key: SecretStr = SecretStr("unused")

    # --- calls ----------------------------------------------------------------------------
    personas_dir: Path = PERSONAS_DIR
    inbound_persona: str = "inbound_support"
    inbound_transfer_number: str | None = Field(None, description="E.164 or sip: URI of the human queue")
    sip_outbound_trunk_name: str = Field(
        OUTBOUND_TRUNK_NAME,
        min_length=1,
        description="the outbound trunk the rollout keeps in LiveKit by name; its id is looked up at dial time",
    )
    sip_outbound_trunk_id: str | None = Field(None, description="an explicit trunk id instead of the lookup by name")
    max_call_duration_s: int = Field(MAX_CALL_DURATION_S, gt=0)

    # --- recordings -----------------------------------------------------------------------
    # The report's live transcript is redacted (callcenter/redaction.py); with this on, the words
    # as heard are also written as live_transcript.raw.json next to the recording, which the
    # bucket's lifecycle rule deletes (manifests/gcs/recordings-lifecycle.json)
    keep_raw_transcript: bool = False
    recordings_bucket: str = ""
    gcp_project: str | None = None
    storage_emulator_host: str | None = None  # set locally (gcp-storage-emulator); unset on GKE
    egress_enabled: bool = True
    # "local": the local stack's recorder participant (agent/local_recorder.py) instead of Egress,
    # which cannot be built here; never set on GKE
    recorder: Literal["egress", "local"] = "egress"
    # Egress uploads with Workload Identity when empty; a service-account JSON only where WI is unavailable
    egress_gcp_credentials: SecretStr = SecretStr("")

    @model_validator(mode="after")
    def _endpoints_present(self) -> AgentSettings:
        if self.stt_provider is SttProvider.RIVA and not self.riva_server:
            raise ValueError("RIVA_SERVER is empty: set it (e.g. riva:50051) or STT_PROVIDER=openai with STT_BASE_URL")
        for name in ("llm_base_url", "tts_base_url"):
            if not getattr(self, name).startswith(("http://", "https://")):
                raise ValueError(f"{name.upper()} must be an http(s) URL ending in /v1, got {getattr(self, name)!r}")
        return self


def load_settings(**overrides: object) -> AgentSettings:
    """Settings from the environment; the error names the variables to fix."""
    try:
        return AgentSettings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']).upper() or 'settings'}: {e['msg']}" for e in exc.errors()
        )
        raise SystemExit(f"agent settings are invalid: {problems}") from None
