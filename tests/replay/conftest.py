"""The replay tests' fixtures: the local engines the replay's agent worker talks to, and buckets."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from callcenter.bucket import open_client
from orchestration.resources.storage import RecordingsBucket
from tests.conftest import LLM_MODEL


@pytest.fixture(scope="module")
def engines(stt_server: str, tts_server: str, llm_base_url: str) -> dict[str, str]:
    return {
        "STT_BASE_URL": stt_server,
        "TTS_BASE_URL": tts_server,
        "LLM_BASE_URL": llm_base_url,
        "LLM_MODEL": LLM_MODEL,
    }


@pytest.fixture(scope="module")
def new_bucket(gcs_emulator: str) -> Callable[[str], RecordingsBucket]:
    """A fresh, empty recordings bucket on the emulator per call."""
    client = open_client("local", gcs_emulator)

    def make(prefix: str) -> RecordingsBucket:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        client.create_bucket(name)
        return RecordingsBucket(bucket_name=name, project="local", emulator_host=gcs_emulator)

    return make
