"""The ledger on PostgreSQL (GKE), from CALLCENTER_DIALING_DSN: psycopg's ``%s`` placeholders,
one autocommit connection with explicit transactions, and migrations serialised across
processes on an advisory lock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from orchestration.defs.dialing.ledger.schema import SCHEMA
from orchestration.defs.dialing.ledger.store import DialStore


class PostgresDialStore(DialStore):
    engine = "postgres"
    _placeholder = "%s"

    def __init__(self, dsn: str):
        import psycopg

        try:
            self._conn = psycopg.connect(dsn, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as e:
            # The DSN holds a password: name the setting, never echo its value (libpq's message does not).
            raise ConnectionError(
                f"cannot connect to the dialing ledger database set in CALLCENTER_DIALING_DSN: {e}"
            ) from None
        self._lock = threading.RLock()
        self.migrate()

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            yield cur

    def migrate(self) -> None:
        with self.transaction() as cur:
            # Two code-location processes may migrate at once; serialise on an advisory lock.
            cur.execute("SELECT pg_advisory_xact_lock(7007)")
            for stmt in SCHEMA:
                cur.execute(stmt)

    def close(self) -> None:
        self._conn.close()
