"""Prometheus metrics, one registry per app so tests can build several apps."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class SpeechMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tts_requests", "Speech requests by outcome", ["response_format", "status"], registry=self.registry
        )
        self.errors = Counter("tts_errors", "Failed requests by error type", ["type"], registry=self.registry)
        self.queue_depth = Gauge("tts_queue_depth", "Requests waiting for a synthesis slot", registry=self.registry)
        self.active = Gauge("tts_active_syntheses", "Requests synthesizing now", registry=self.registry)
        self.rejected = Counter("tts_rejected", "Requests refused with 429 (queue full)", registry=self.registry)
        self.cancelled = Counter("tts_cancelled", "Syntheses stopped because the caller left", registry=self.registry)
        self.ttfb = Histogram(
            "tts_time_to_first_byte_seconds",
            "Request start to first audio byte",
            buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10),
            registry=self.registry,
        )
        self.rtf = Histogram(
            "tts_real_time_factor",
            "Synthesis wall time / audio duration (below 1 = faster than real time)",
            buckets=(0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1, 1.5, 2, 5),
            registry=self.registry,
        )
        self.audio_seconds = Counter("tts_audio_seconds", "Seconds of audio produced", registry=self.registry)
