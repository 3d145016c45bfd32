"""Admission control: a fixed number of syntheses at once, a bounded wait, then 429.

One model per GPU process means piling requests up only adds latency to everyone; a caller
told "Retry-After" can go to another replica instead, or come back once the queue has drained.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import AsyncIterator

from tts.app.metrics import SpeechMetrics


class QueueFull(Exception):
    pass


# Weight of the newest synthesis in the running mean: a few requests move it, one outlier does not.
_MEAN_WEIGHT = 0.3


class SynthesisGate:
    def __init__(
        self, concurrency: int, max_queue: int, metrics: SpeechMetrics | None = None, min_retry_after_s: int = 1
    ) -> None:
        self.concurrency = max(1, concurrency)
        self.max_queue = max(0, max_queue)
        self._slots = asyncio.Semaphore(self.concurrency)
        self.admitted = 0  # waiting + active
        self.metrics = metrics
        self.min_retry_after_s = max(1, min_retry_after_s)
        self.mean_hold_s: float | None = None  # how long a request holds its slot, measured

    def retry_after_s(self) -> int:
        """Seconds until the requests admitted now have drained: they run ``concurrency`` at a
        time, each for about the measured mean; never less than the configured floor."""
        if self.mean_hold_s is None:
            return self.min_retry_after_s
        rounds = math.ceil(self.admitted / self.concurrency)
        return max(self.min_retry_after_s, math.ceil(rounds * self.mean_hold_s))

    def _measured(self, seconds: float) -> None:
        mean = self.mean_hold_s
        self.mean_hold_s = seconds if mean is None else mean + _MEAN_WEIGHT * (seconds - mean)

    def admit(self) -> None:
        """Reserve a place (raises QueueFull); pair with `slot()` which releases it."""
        if self.admitted >= self.concurrency + self.max_queue:
            raise QueueFull
        self.admitted += 1

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Wait for a synthesis slot; always releases the admission taken by `admit()`."""
        m = self.metrics
        try:
            if m:
                m.queue_depth.inc()
            try:
                await self._slots.acquire()
            finally:
                if m:
                    m.queue_depth.dec()
            started = time.monotonic()
            try:
                if m:
                    m.active.inc()
                yield
            finally:
                if m:
                    m.active.dec()
                self._slots.release()
                self._measured(time.monotonic() - started)
        finally:
            self.admitted -= 1
