"""The dialing domain's resources: the ledger store and call capacity (the campaign catalog is shared:
orchestration/resources/campaigns.py)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import httpx
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field

from orchestration.defs.dialing.ledger import DialStore, PostgresDialStore, SqliteDialStore

LEDGER_FILENAME = "dialing/ledger.sqlite3"


class DialLedgerStore(dg.ConfigurableResource):
    """The dial ledger: PostgreSQL when ``postgres_dsn`` is set, else SQLite under ``data_dir``."""

    data_dir: str = ""
    postgres_dsn: str = ""

    @contextmanager
    def open(self) -> Iterator[DialStore]:
        if self.postgres_dsn:
            store: DialStore = PostgresDialStore(self.postgres_dsn)
        elif self.data_dir:
            store = SqliteDialStore(Path(self.data_dir) / LEDGER_FILENAME)
        else:
            raise dg.Failure(
                description="the dial ledger has no store: set CALLCENTER_DATA_DIR (local SQLite file) "
                "or CALLCENTER_DIALING_DSN (PostgreSQL, production)"
            )
        try:
            yield store
        finally:
            store.close()


class CallCapacity(dg.ConfigurableResource):
    """Concurrent calls the fleet carries: the scarcest service decides (docs/capacity.md).

    Each figure is *calls*, not streams: TTS and the LLM are busy only part of a call, so
    their call counts already include that duty cycle. Inbound calls share the same
    capacity: the tick subtracts every live LiveKit room, not only outbound ones.
    """

    stt_calls: int = Field(ge=1, description="calls Riva streams at once (about 50-100 per L4)")
    llm_calls: int = Field(ge=1, description="calls whose context vLLM keeps resident (about 25 per L4)")
    tts_calls: int = Field(ge=1, description="calls Chatterbox voices at a 0.4 speaking duty (about 25 per L4)")
    recorder_calls: int = Field(ge=1, description="calls Egress records at once (16 per pod)")
    headroom: float = Field(1.0, gt=0, le=1, description="fraction of the scarcest capacity dialing may fill")
    max_call_minutes: int = Field(
        120, ge=1, description="an attempt with no session report after this is closed as failed"
    )
    parallel_dispatches: int = Field(8, ge=1)
    tts_metrics_urls: list[str] = Field(
        default_factory=list,
        description="the Chatterbox pods' /metrics: when set, each tick reads their measured "
        "tts_chatterbox_capacity_streams (the fast engine's admission limit) instead of tts_calls",
    )
    tts_speaking_duty: float = Field(0.4, gt=0, le=1, description="share of a call the agent is speaking")

    @property
    def global_limit(self) -> int:
        """The configured figures' limit (no network)."""
        return self._limit(self.tts_calls)

    def _limit(self, tts_calls: int) -> int:
        scarcest = min(self.stt_calls, self.llm_calls, tts_calls, self.recorder_calls)
        return max(1, math.floor(scarcest * self.headroom))

    def current_limit(self, timeout_s: float = 3.0) -> tuple[int, str]:
        """(concurrent call limit, where the TTS figure came from) for this tick.

        With ``tts_metrics_urls`` the TTS figure is what the GPUs measured at start-up, as
        calls: streams / speaking duty. A pod that cannot be read, or runs an engine without
        the figure, falls back to the configured ``tts_calls`` and says why.
        """
        if not self.tts_metrics_urls:
            return self.global_limit, "configured"
        streams = 0.0
        for url in self.tts_metrics_urls:
            try:
                value = _read_gauge(url, TTS_CAPACITY_METRIC, timeout_s)
            except (httpx.HTTPError, ValueError) as exc:
                return self.global_limit, f"configured: {url} unreadable ({type(exc).__name__}: {exc})"
            if value is None:
                return self.global_limit, (
                    f"configured: {url} has no {TTS_CAPACITY_METRIC} (is TTS_CHATTERBOX_ENGINE=fast on that pod?)"
                )
            streams += value
        tts_calls = max(1, math.floor(streams / self.tts_speaking_duty))
        return self._limit(tts_calls), f"measured: {streams:g} TTS streams = {tts_calls} calls"


TTS_CAPACITY_METRIC = "tts_chatterbox_capacity_streams"


def _read_gauge(url: str, name: str, timeout_s: float) -> float | None:
    """One gauge's value from a Prometheus text endpoint (None when it is not there)."""
    response = httpx.get(url, timeout=timeout_s)
    response.raise_for_status()
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name:
                return float(sample.value)
    return None
