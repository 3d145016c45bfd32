"""The dialing domain's resources: the ledger store, the campaign catalog, call capacity."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field

from orchestration.defs.dialing.campaigns import CampaignFile, load_catalog
from orchestration.defs.dialing.store import DialStore, PostgresDialStore, SqliteDialStore

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


class CampaignCatalog(dg.ConfigurableResource):
    """Campaign YAML files (one per campaign) and any fleet-wide do-not-call registry files."""

    directory: str
    registry_files: list[str] = Field(default_factory=list)

    def load(self) -> dict[str, CampaignFile]:
        return load_catalog(Path(self.directory))


class CallCapacity(dg.ConfigurableResource):
    """Concurrent calls the inference fleet carries: the scarcest GPU service, with headroom.

    Every call holds one streaming STT session, one LLM chat and one TTS stream for its
    whole length; inbound calls count too (the tick subtracts LiveKit's live rooms).
    """

    stt_sessions: int = Field(ge=1, description="Riva streaming sessions (about 50 per L4)")
    llm_sessions: int = Field(ge=1, description="concurrent chats vLLM sustains at voice latency (about 25 per L4)")
    tts_streams: int = Field(ge=1, description="concurrent TTS streams (about 10 per L4 for Chatterbox)")
    headroom: float = Field(0.8, gt=0, le=1, description="fraction of the scarcest capacity outbound may use")
    max_call_minutes: int = Field(120, ge=1, description="an attempt with no session report after this is closed as failed")
    parallel_dispatches: int = Field(8, ge=1)

    @property
    def global_limit(self) -> int:
        return max(1, math.floor(min(self.stt_sessions, self.llm_sessions, self.tts_streams) * self.headroom))
