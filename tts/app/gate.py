"""Admission control: a fixed number of syntheses at once, a bounded wait, then 429.

One model per GPU process means piling requests up only adds latency to everyone; a caller
told "Retry-After" can go to another replica instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from tts.app.metrics import SpeechMetrics


class QueueFull(Exception):
    pass


class SynthesisGate:
    def __init__(self, concurrency: int, max_queue: int, metrics: SpeechMetrics | None = None) -> None:
        self.concurrency = max(1, concurrency)
        self.max_queue = max(0, max_queue)
        self._slots = asyncio.Semaphore(self.concurrency)
        self.admitted = 0  # waiting + active
        self.metrics = metrics

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
            try:
                if m:
                    m.active.inc()
                yield
            finally:
                if m:
                    m.active.dec()
                self._slots.release()
        finally:
            self.admitted -= 1
