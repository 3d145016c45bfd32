"""Fixtures shared by every area: real servers on loopback, and the LiveKit double."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devstack.livekit import LocalLiveKit
from doubles.livekit_server import LiveKitDouble
from orchestration.defs.postcall.llama_server import bundled_gguf

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


def stop_process(proc: subprocess.Popen, grace: float = 10.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds: no test server outlives its fixture."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="session")
def real_livekit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalLiveKit]:
    """The real livekit-server (built by scripts/setup.sh) with its Redis, on loopback ports of
    its own; one per test session (rooms, trunks and rules are named uniquely by the tests)."""
    lk = LocalLiveKit(http_port=free_port(), rtc_tcp_port=free_port(), rtc_udp_port=free_port(), redis_port=free_port())
    config = lk.write_config(tmp_path_factory.mktemp("livekit") / "livekit.yaml")
    redis_svc, server_svc = lk.services(config)
    logs = tmp_path_factory.mktemp("livekit-logs")
    procs: list[subprocess.Popen] = []
    try:
        for svc in (redis_svc, server_svc):
            out = (logs / f"{svc.name}.log").open("wb")
            procs.append(subprocess.Popen(svc.argv, stdout=out, stderr=subprocess.STDOUT))
            wait_for_port(svc.port, procs[-1], timeout=30)
        yield lk
    finally:
        for proc in reversed(procs):
            stop_process(proc)


@pytest.fixture
def livekit_double() -> Iterator[LiveKitDouble]:
    """A fresh LiveKit Twirp double on loopback; its state lives for one test."""
    with LiveKitDouble() as double:
        yield double


@pytest.fixture(scope="session")
def gcs_emulator() -> Iterator[str]:
    """gcp-storage-emulator on loopback (in memory). Yields its URL for STORAGE_EMULATOR_HOST."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)


# --- the local engines, once per test session (the agent, post-call and end-to-end tests) ---

LLM_MODEL = "smollm2-135m"


@pytest.fixture(scope="session")
def llm_base_url() -> Iterator[str]:
    """llama.cpp's OpenAI-compatible server with SmolLM2-135M, once per session (1 thread: 2-core CI)."""
    port = free_port()
    log = tempfile.NamedTemporaryFile(prefix="llama-server-", suffix=".log", delete=False)  # noqa: SIM115
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "orchestration.defs.postcall.llama_server",
            "--model", bundled_gguf(), "--model_alias", LLM_MODEL,
            "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "1",
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        wait_for_port(port, proc, timeout=90)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc)
        log.close()
        os.unlink(log.name)


def _spawn(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.fixture(scope="session")
def stt_server() -> Iterator[str]:
    """devstack/stt_server.py (faster-whisper tiny.en) on loopback; yields its /v1 base URL."""
    port = free_port()
    proc = _spawn([sys.executable, "-m", "devstack.stt_server", "--port", str(port), "--threads", "2"])
    try:
        wait_for_port(port, proc, timeout=90)
        wait_until_ready(f"http://127.0.0.1:{port}/health", proc, timeout=90)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc)


def wait_until_ready(url: str, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before {url} was ready")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} not ready after {timeout:.0f} s")


@pytest.fixture(scope="session")
def tts_server() -> Iterator[str]:
    """The project's tts/ server with the Piper backend on loopback; yields its /v1 base URL."""
    port = free_port()
    proc = _spawn(
        [sys.executable, "-m", "tts.app"],
        env={"TTS_BACKEND": "piper", "TTS_HOST": "127.0.0.1", "TTS_PORT": str(port), "TTS_LOG_LEVEL": "warning"},
    )
    try:
        wait_for_port(port, proc, timeout=90)
        wait_until_ready(f"http://127.0.0.1:{port}/ready", proc, timeout=90)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        stop_process(proc)
