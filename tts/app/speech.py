"""From a validated request to audio: segments in order -> backend -> resample -> speed -> encode."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import numpy as np

from tts.app.audio.encode import Resampler, StreamEncoder, TimeStretcher
from tts.app.backends.base import SegmentRequest, SpeechBackend
from tts.app.metrics import SpeechMetrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SpeechJob:
    segments: list[str]
    template: SegmentRequest  # voice/options shared by every segment; text filled per segment
    response_format: str
    output_rate: int


async def pcm_stream(backend: SpeechBackend, job: SpeechJob) -> AsyncIterator[np.ndarray]:
    """float32 mono at `job.output_rate`, speed applied, segment after segment."""
    resampler: Resampler | None = None
    speed = job.template.speed
    stretcher = TimeStretcher(job.output_rate, speed) if not backend.native_speed else None
    for text in job.segments:
        request = replace(job.template, text=text)
        # aclosing: if we are cancelled (caller hung up), the backend's iterator is closed
        # now, which stops its worker, rather than whenever the GC gets to it.
        async with contextlib.aclosing(backend.synthesize(request)) as chunks:
            async for chunk in chunks:
                if resampler is None:  # the rate is known once the backend has produced audio
                    resampler = Resampler(backend.sample_rate, job.output_rate)
                out = resampler.process(chunk)
                if stretcher is not None:
                    out = stretcher.process(out)
                if len(out):
                    yield out
    tail = [resampler.flush()] if resampler is not None else []
    if stretcher is not None:
        tail = [stretcher.process(t) for t in tail] + [stretcher.flush()]
    for out in tail:
        if len(out):
            yield out


class Measured:
    """Time to first byte and real-time factor of one request, into the metrics."""

    def __init__(self, metrics: SpeechMetrics, started: float, output_rate: int) -> None:
        self.metrics = metrics
        self.started = started
        self.output_rate = output_rate
        self.samples = 0
        self.first_byte_at: float | None = None

    def audio(self, samples: np.ndarray) -> None:
        self.samples += len(samples)

    def first_byte(self) -> None:
        if self.first_byte_at is None:
            self.first_byte_at = time.perf_counter()
            self.metrics.ttfb.observe(self.first_byte_at - self.started)

    def finish(self) -> None:
        seconds = self.samples / self.output_rate
        if seconds > 0:
            self.metrics.audio_seconds.inc(seconds)
            self.metrics.rtf.observe((time.perf_counter() - self.started) / seconds)


async def encoded_stream(backend: SpeechBackend, job: SpeechJob, measured: Measured) -> AsyncIterator[bytes]:
    encoder = StreamEncoder(job.response_format, job.output_rate)
    async for samples in pcm_stream(backend, job):
        measured.audio(samples)
        data = encoder.encode(samples)
        if data:
            measured.first_byte()
            yield data
    data = encoder.flush()
    if data:
        measured.first_byte()
        yield data
    measured.finish()


async def whole_file(backend: SpeechBackend, job: SpeechJob, measured: Measured) -> bytes:
    parts = []
    async for samples in pcm_stream(backend, job):
        measured.audio(samples)
        parts.append(samples)
    audio = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    encoder = StreamEncoder(job.response_format, job.output_rate, total_samples=len(audio))
    data = encoder.encode(audio) + encoder.flush()
    measured.first_byte()
    measured.finish()
    return data


def sse_event(payload: dict) -> bytes:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n".encode()


async def sse_stream(chunks: AsyncIterator[bytes], input_text: str) -> AsyncIterator[bytes]:
    """OpenAI's `stream_format: "sse"`: speech.audio.delta events, then speech.audio.done."""
    async for data in chunks:
        yield sse_event({"type": "speech.audio.delta", "audio": base64.b64encode(data).decode()})
    # No tokenizer here: input_tokens counts words, the nearest thing a TTS model has.
    words = len(input_text.split())
    yield sse_event(
        {"type": "speech.audio.done", "usage": {"input_tokens": words, "output_tokens": 0, "total_tokens": words}}
    )
