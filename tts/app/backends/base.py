"""The one small interface every speech backend implements.

The server splits a request's text into segments (sentences/clauses) and asks the
backend for each segment in order. A backend yields mono float32 PCM chunks in
[-1, 1] at its own ``sample_rate``; the server resamples, applies speed if the
backend cannot, encodes and streams. Backends never see HTTP.

Cancellation: the server stops iterating (``aclose()``) when the caller hangs up;
blocking backends run in a worker thread via :func:`iterate_in_thread`, which sets
``cancelled`` so the worker stops at its next chunk boundary instead of
synthesizing audio nobody will hear.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Voice:
    """A voice the caller can name in `voice`.

    Built-in voices belong to a backend (a Piper speaker, an espeak voice, Chatterbox's
    default conditionals); cloned voices carry a reference clip for Chatterbox.
    """

    name: str
    backend: str | None  # the backend that speaks it; None for a clone this server's backend cannot speak
    reference_clip: Path | None = None  # Chatterbox `audio_prompt_path`
    language: str | None = None
    description: str = ""
    builtin: bool = True


@dataclass(frozen=True)
class SegmentRequest:
    """One text segment to speak, with the request's options already validated."""

    text: str
    voice: Voice
    speed: float = 1.0
    instructions: str | None = None
    # Chatterbox knobs (None: the model's own default).
    exaggeration: float | None = None
    cfg_weight: float | None = None
    temperature: float | None = None
    language: str | None = None
    # Per-request id for logs/metrics and for batching engines to tell callers apart.
    request_id: str = ""
    extra: dict = field(default_factory=dict)


class BackendNotReady(RuntimeError):
    """Raised when synthesis is asked of a backend whose model is not loaded/warm."""


class SpeechBackend(abc.ABC):
    """A loaded speech model. One instance per server process.

    Subclasses set ``name`` and ``sample_rate`` and implement :meth:`load`,
    :meth:`voices` and :meth:`synthesize`.
    """

    name: str = "base"
    sample_rate: int = 24_000
    # True when `speed` is honoured natively (Piper length_scale, espeak -s); otherwise
    # the server time-stretches the output.
    native_speed: bool = False
    # True when the backend accepts uploaded reference clips (voice cloning).
    supports_cloning: bool = False
    # The model's own lower bound on a reference clip's length, seconds (0: none); the
    # server's TTS_CLIP_MIN_SECONDS is raised to it so uploads fail early, not syntheses.
    min_clip_seconds: float = 0.0
    # How many segments this backend can usefully synthesize at once in this process
    # (a batching GPU engine: >1). The server's concurrency limit defaults to it.
    max_parallel_segments: int = 1
    # Languages accepted in `language` (None: the field is not supported).
    languages: frozenset[str] | None = None

    def __init__(self) -> None:
        self.ready = False

    @abc.abstractmethod
    def load(self) -> None:
        """Load the model (blocking; the server runs it in a thread at startup)."""

    @abc.abstractmethod
    def voices(self) -> list[Voice]:
        """Built-in voices of this backend."""

    @abc.abstractmethod
    def synthesize(self, request: SegmentRequest) -> AsyncIterator[np.ndarray]:
        """Yield float32 mono chunks at ``sample_rate`` for one segment, in order."""

    async def warmup(self) -> None:
        """Synthesize a short phrase end to end so /ready means 'can speak now'."""
        voices = self.voices()
        if not voices:
            raise BackendNotReady(f"{self.name} backend has no voice to warm up with")
        samples = 0
        async for chunk in self.synthesize(SegmentRequest(text="Hello.", voice=voices[0])):
            samples += len(chunk)
        if samples == 0:
            raise BackendNotReady(f"{self.name} backend produced no audio during warm-up")
        self.ready = True

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release the model (optional)."""


_DONE = object()


async def iterate_in_thread(
    produce: Callable[[threading.Event], Iterator[np.ndarray]],
    *,
    max_buffered: int = 8,
) -> AsyncIterator[np.ndarray]:
    """Run a blocking chunk generator in a worker thread and yield its chunks.

    ``produce(cancelled)`` must check ``cancelled.is_set()`` between chunks. When the
    consumer stops early (client disconnect), ``cancelled`` is set and the thread is
    left to finish its current chunk; exceptions in the worker re-raise here.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(maxsize=max_buffered)
    cancelled = threading.Event()

    def put(item: object) -> None:
        # Blocks the worker when the consumer is slow, bounding memory per stream.
        fut = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
        while not cancelled.is_set():
            try:
                fut.result(timeout=0.1)
                return
            except TimeoutError:
                continue
        fut.cancel()

    def worker() -> None:
        try:
            for chunk in produce(cancelled):
                if cancelled.is_set():
                    return
                put(chunk)
        except BaseException as exc:  # delivered to the consumer, which re-raises
            if not cancelled.is_set():
                put(exc)
            return
        if not cancelled.is_set():
            put(_DONE)

    thread = threading.Thread(target=worker, name="tts-synthesis", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancelled.set()
        # Drain so a worker blocked in put() sees the cancel promptly.
        with contextlib.suppress(asyncio.QueueEmpty):
            while True:
                queue.get_nowait()
