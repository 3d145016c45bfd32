"""espeak-ng backend: the lightest fallback (a Debian binary, no model files)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import shutil
import subprocess
import wave
from collections.abc import AsyncIterator

import numpy as np

from tts.app.backends.base import BackendNotReady, SegmentRequest, SpeechBackend, Voice


class EspeakBackend(SpeechBackend):
    name = "espeak"
    sample_rate = 22_050
    native_speed = False  # -s has a narrower range than 0.25-4.0; the server time-stretches
    max_parallel_segments = 2

    def __init__(self, *, voice_names: list[str] | None = None, binary: str = "espeak-ng") -> None:
        super().__init__()
        self.voice_names = voice_names or ["en-us"]
        self.binary = binary
        self._path: str | None = None

    def load(self) -> None:
        self._path = shutil.which(self.binary)
        if self._path is None:
            raise BackendNotReady(f"{self.binary} is not on PATH (apt-get install espeak-ng)")
        listing = subprocess.run([self._path, "--voices"], capture_output=True, text=True, timeout=10).stdout
        known = {line.split()[1] for line in listing.splitlines()[1:] if len(line.split()) > 1}
        missing = [v for v in self.voice_names if v not in known]
        if missing:
            raise BackendNotReady(f"espeak-ng has no voice {missing} (TTS_ESPEAK_VOICES); see `espeak-ng --voices`")
        self.languages = frozenset(v.split("-")[0] for v in self.voice_names)

    def voices(self) -> list[Voice]:
        return [
            Voice(name=v, backend=self.name, language=v.split("-")[0], description="espeak-ng")
            for v in self.voice_names
        ]

    async def synthesize(self, request: SegmentRequest) -> AsyncIterator[np.ndarray]:
        if self._path is None:
            raise BackendNotReady("espeak-ng is not loaded yet")
        proc = await asyncio.create_subprocess_exec(
            self._path,
            "-v",
            request.voice.name,
            "--stdout",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            # Text through stdin, never argv: no option injection from caller text.
            out, _ = await proc.communicate(request.text.encode())
        finally:
            if proc.returncode is None:  # cancelled (caller hung up)
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        if proc.returncode != 0:
            raise RuntimeError(f"espeak-ng exited with {proc.returncode}")
        with wave.open(io.BytesIO(out)) as wav:
            self.sample_rate = wav.getframerate()
            frames = wav.readframes(wav.getnframes())
        yield np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
