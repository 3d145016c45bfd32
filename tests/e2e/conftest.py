"""End-to-end calls through the real livekit-server: the agent worker as it runs in production
(``python -m agent.worker start``) on the local engines, callers from devstack/phone_line.py."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from callcenter.bucket import open_client
from devstack.livekit import LocalLiveKit
from orchestration.defs.replay.replayer import agent_worker as agent_worker_process
from orchestration.resources.storage import RecordingsBucket
from tests.conftest import LLM_MODEL, free_port

AGENT_NAME = "call-center-agent-e2e"
LINE_NUMBER = "+14155550100"


@pytest.fixture(scope="module")
def e2e_bucket(gcs_emulator: str) -> RecordingsBucket:
    name = f"e2e-recordings-{uuid.uuid4().hex[:10]}"
    client = open_client("local", gcs_emulator)
    client.create_bucket(name)
    return RecordingsBucket(bucket_name=name, project="local", emulator_host=gcs_emulator)


@contextmanager
def running_worker(
    real_livekit: LocalLiveKit,
    *,
    stt_server: str,
    tts_server: str,
    llm_base_url: str,
    bucket: RecordingsBucket,
    log_dir: Path,
    agent_name: str = AGENT_NAME,
    **env: str,
) -> Iterator[LocalLiveKit]:
    """``python -m agent.worker start`` registered with the real livekit-server as ``agent_name``;
    ``env``: more settings (e.g. ``INBOUND_PERSONA``)."""
    log_path = log_dir / "agent.log"
    env = {
        **os.environ,
        **real_livekit.env(),
        "AGENT_NAME": agent_name,
        "WORKER_PORT": str(free_port()),
        "WORKER_MAX_CALLS": "4",
        "STT_PROVIDER": "openai",
        "STT_BASE_URL": stt_server,
        "LLM_BASE_URL": llm_base_url,
        "LLM_MODEL": LLM_MODEL,
        "TTS_BASE_URL": tts_server,
        "TTS_MODEL": "piper",
        "TTS_VOICE": "joe",
        "RECORDINGS_BUCKET": bucket.bucket_name,
        "STORAGE_EMULATOR_HOST": bucket.emulator_host,
        "RECORDER": "local",
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    try:
        # the one way the product starts a local agent worker and waits for it to register
        with agent_worker_process(env, log_path, start_timeout_s=90):
            yield real_livekit
    finally:
        if os.environ.get("CALLCENTER_E2E_KEEP_LOGS"):
            print(log_path.read_text()[-20000:])


@pytest.fixture(scope="module")
def agent_worker(
    real_livekit: LocalLiveKit,
    stt_server: str,
    tts_server: str,
    llm_base_url: str,
    e2e_bucket: RecordingsBucket,
    tmp_path_factory,
) -> Iterator[LocalLiveKit]:
    """The agent worker registered with the real livekit-server; yields that server."""
    with running_worker(
        real_livekit,
        stt_server=stt_server,
        tts_server=tts_server,
        llm_base_url=llm_base_url,
        bucket=e2e_bucket,
        log_dir=tmp_path_factory.mktemp("agent"),
    ) as lk:
        yield lk


@pytest.fixture(scope="module")
def rollout_sip(real_livekit: LocalLiveKit) -> LocalLiveKit:
    """The rollout's LiveKit part (trunks, dispatch rule) materialized against the real server,
    as the local stack's ``sip_trunks`` job does; yields that server."""
    import dagster as dg

    from orchestration.defs.rollout.assets import TRUNKS
    from orchestration.defs.rollout.kube import KubernetesResource
    from orchestration.defs.rollout.settings import RolloutSettings
    from orchestration.defs.rollout.trunks import SipTrunkSettings
    from orchestration.resources.livekit import LiveKitResource

    os.environ.setdefault("CALLCENTER_SIP_TRUNK_USERNAME", "e2e")
    os.environ.setdefault("CALLCENTER_SIP_TRUNK_PASSWORD", "e2e-only")
    result = dg.materialize(
        TRUNKS,
        resources={
            "sip_trunks": SipTrunkSettings(
                phone_numbers=LINE_NUMBER,
                termination_uri="127.0.0.1:5060",
                allowed_addresses="127.0.0.1/32",
                credentials_from_env=True,
                agent_name=AGENT_NAME,
            ),
            "livekit": LiveKitResource(
                url=real_livekit.url, api_key=real_livekit.api_key, api_secret=real_livekit.api_secret
            ),
            "kubernetes": KubernetesResource(),
            "rollout_settings": RolloutSettings(overlay="dev"),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    return real_livekit
