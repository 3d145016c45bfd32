"""The dial ledger: every dial attempt, the do-not-call list, the loaded contacts, campaign
state, the tick's lease and the sweeps' watermarks, durable in SQLite locally and PostgreSQL
in production behind one API (``DialStore``).

Parts: ``attempts.py``, ``do_not_call.py``, ``contacts.py``, ``campaigns.py`` (campaign
state), ``leases.py`` (lease and marks), composed in ``store.py``; the tables in
``schema.py``; what the parts share in ``sql.py``; what each engine does its own way in
``sqlite.py`` and ``postgres.py``. Import from here.
"""

from __future__ import annotations

from pathlib import Path

from orchestration.defs.dialing.ledger.attempts import (
    LIVE_STATUSES,
    OPEN_STATUSES,
    Attempt,
    AttemptStatus,
    ContactHistory,
    attempt_key,
)
from orchestration.defs.dialing.ledger.campaigns import CampaignState
from orchestration.defs.dialing.ledger.do_not_call import RegistryImport
from orchestration.defs.dialing.ledger.postgres import PostgresDialStore
from orchestration.defs.dialing.ledger.sqlite import SqliteDialStore
from orchestration.defs.dialing.ledger.store import DialStore

__all__ = [
    "LIVE_STATUSES",
    "OPEN_STATUSES",
    "Attempt",
    "AttemptStatus",
    "CampaignState",
    "ContactHistory",
    "DialStore",
    "PostgresDialStore",
    "RegistryImport",
    "SqliteDialStore",
    "attempt_key",
    "open_store",
]


def open_store(sqlite_path: Path | str | None = None, postgres_dsn: str | None = None) -> DialStore:
    if postgres_dsn:
        return PostgresDialStore(postgres_dsn)
    if sqlite_path:
        return SqliteDialStore(sqlite_path)
    raise ValueError(
        "no dialing ledger configured: set CALLCENTER_DIALING_DSN (PostgreSQL) or CALLCENTER_DATA_DIR (SQLite)"
    )
