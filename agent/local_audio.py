"""Audio I/O without a room: a simulated caller line for the local stack, tests and the bench.

``LineAudioInput`` is the caller's microphone: a steady real-time stream of 20 ms frames,
silence unless an utterance is queued with ``say_pcm``. ``CapturedAudioOutput`` is the
caller's earpiece: it keeps the agent's audio per reply and reports playback at once
(no jitter buffer), so measured latencies are the pipeline's own.
"""

from __future__ import annotations

import asyncio
import time
import wave
from collections import deque
from pathlib import Path

import numpy as np
from livekit import rtc
from livekit.agents.voice import io

FRAME_MS = 20


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Mono int16 samples and the sample rate of a 16-bit PCM WAV."""
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
        if w.getnchannels() > 1:
            pcm = pcm.reshape(-1, w.getnchannels()).mean(axis=1).astype(np.int16)
        return pcm, w.getframerate()


class LineAudioInput(io.AudioInput):
    def __init__(self, sample_rate: int = 16000) -> None:
        super().__init__(label="caller-line")
        self.sample_rate = sample_rate
        self._samples_per_frame = sample_rate * FRAME_MS // 1000
        self._pending: deque[np.ndarray] = deque()
        self._next_at: float | None = None
        self._closed = False
        self.speech_ended_at: float | None = None  # wall time the last queued utterance finished
        self._speech_end_pending: float | None = None

    def say_pcm(self, pcm: np.ndarray, rate: int, *, trailing_silence_s: float = 1.5) -> None:
        """Queue an utterance (int16 at ``rate``, resampled to the line's rate) followed by silence."""
        if rate != self.sample_rate and len(pcm):
            n_out = int(round(len(pcm) * self.sample_rate / rate))
            pcm = np.interp(np.linspace(0, len(pcm) - 1, n_out), np.arange(len(pcm)), pcm.astype(np.float32))
        n = self._samples_per_frame
        padded = np.concatenate([pcm.astype(np.int16), np.zeros(int(trailing_silence_s * self.sample_rate), np.int16)])
        speech_frames = -(-len(pcm) // n)
        for i in range(0, len(padded), n):
            chunk = padded[i : i + n]
            if len(chunk) < n:
                chunk = np.pad(chunk, (0, n - len(chunk)))
            self._pending.append(chunk)
        self._speech_end_pending = float(speech_frames)

    def close(self) -> None:
        self._closed = True

    async def __anext__(self) -> rtc.AudioFrame:
        if self._closed:
            raise StopAsyncIteration
        now = time.monotonic()
        if self._next_at is None:
            self._next_at = now
        if self._next_at > now:
            await asyncio.sleep(self._next_at - now)
        self._next_at += FRAME_MS / 1000
        if self._pending:
            chunk = self._pending.popleft()
            if self._speech_end_pending is not None:
                self._speech_end_pending -= 1
                if self._speech_end_pending <= 0:
                    self.speech_ended_at = time.time()
                    self._speech_end_pending = None
        else:
            chunk = np.zeros(self._samples_per_frame, np.int16)
        return rtc.AudioFrame(
            data=chunk.tobytes(), sample_rate=self.sample_rate, num_channels=1, samples_per_channel=len(chunk)
        )


class CapturedAudioOutput(io.AudioOutput):
    def __init__(self) -> None:
        super().__init__(label="caller-earpiece", capabilities=io.AudioOutputCapabilities(pause=False))
        self.replies: list[list[rtc.AudioFrame]] = []
        self.reply_started_at: list[float] = []
        self._current: list[rtc.AudioFrame] | None = None
        self._duration = 0.0

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None:
            self._current = []
            self.replies.append(self._current)
            self.reply_started_at.append(time.time())
            self.on_playback_started(created_at=time.time())
        self._current.append(frame)
        self._duration += frame.duration

    def flush(self) -> None:
        super().flush()
        if self._current is not None:
            self._current = None
            played, self._duration = self._duration, 0.0
            self.on_playback_finished(playback_position=played, interrupted=False)

    def clear_buffer(self) -> None:
        if self._current is not None:
            self._current = None
            played, self._duration = self._duration, 0.0
            self.on_playback_finished(playback_position=played, interrupted=True)

    def reply_wav(self, index: int = -1) -> bytes:
        """One reply as a mono 16-bit WAV (to transcribe it back)."""
        frame = rtc.combine_audio_frames(self.replies[index])
        return frame.to_wav_bytes()
