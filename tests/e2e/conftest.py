"""End-to-end calls through the real livekit-server: the agent worker as it runs in production
(``python -m agent.worker start``) on the local engines, callers from devstack/phone_line.py."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from devstack.livekit import LocalLiveKit
from orchestration.resources.storage import RecordingsBucket
from tests.conftest import LLM_MODEL, REPO_ROOT, free_port, stop_process

AGENT_NAME = "call-center-agent-e2e"


@pytest.fixture(scope="module")
def e2e_bucket(gcs_emulator: str) -> RecordingsBucket:
    name = f"e2e-recordings-{uuid.uuid4().hex[:10]}"
    client = storage.Client(project="local", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator})
    client.create_bucket(name)
    return RecordingsBucket(bucket_name=name, project="local", emulator_host=gcs_emulator)


@pytest.fixture(scope="module")
def agent_worker(
    real_livekit: LocalLiveKit, stt_server: str, tts_server: str, llm_base_url: str, e2e_bucket: RecordingsBucket, tmp_path_factory
) -> Iterator[LocalLiveKit]:
    """The agent worker registered with the real livekit-server; yields that server."""
    log_path = tmp_path_factory.mktemp("agent") / "agent.log"
    env = {
        **os.environ,
        **real_livekit.env(),
        "AGENT_NAME": AGENT_NAME,
        "WORKER_PORT": str(free_port()),
        "WORKER_MAX_CALLS": "4",
        "STT_PROVIDER": "openai",
        "STT_BASE_URL": stt_server,
        "LLM_BASE_URL": llm_base_url,
        "LLM_MODEL": LLM_MODEL,
        "TTS_BASE_URL": tts_server,
        "TTS_MODEL": "piper",
        "TTS_VOICE": "joe",
        "RECORDINGS_BUCKET": e2e_bucket.bucket_name,
        "STORAGE_EMULATOR_HOST": e2e_bucket.emulator_host,
        "RECORDER": "local",
        "HF_HUB_OFFLINE": "1",
    }
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.worker", "start"], cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 90
        while b"registered worker" not in log_path.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the agent worker did not register:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.2)
        yield real_livekit
    finally:
        stop_process(proc, grace=20)
        if os.environ.get("CALLCENTER_E2E_KEEP_LOGS"):
            print(log_path.read_text()[-20000:])
