"""What every part of the ledger shares: the engine hooks (a transaction, the placeholder),
running SQL through them, and times as UTC epoch seconds so the same SQL runs on both engines.

The parts (attempts, do-not-call, contacts, campaign state, leases and marks) are written
against ``LedgerSql`` only; an engine (``sqlite.py``, ``postgres.py``) supplies the hooks.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from orchestration.defs.dialing.ledger.schema import SCHEMA


def _ts(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return dt.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


class LedgerSql:
    """The engine hooks and the helpers the ledger's parts run their SQL through."""

    engine: str = "sql"
    _placeholder = "?"

    # --- engine hooks ---------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Any]:  # yields a cursor-like object with execute()
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def migrate(self) -> None:
        with self.transaction() as cur:
            for stmt in SCHEMA:
                cur.execute(stmt)

    # --- running SQL ----------------------------------------------------------------
    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def execute(self, cur: Any, sql: str, params: Iterable[Any] = ()) -> Any:
        """One statement, written with ``?`` placeholders, in this engine's dialect, on a cursor from
        ``transaction()``: for the tables that share the ledger's database (the webhooks' outbox)."""
        return cur.execute(self._sql(sql), tuple(params))

    _exec = execute

    def _many(self, cur: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cur.executemany(self._sql(sql), rows)

    def _wrote_row(self, sql: str, params: Sequence[Any]) -> bool:
        """Run one conditional write ending in RETURNING in its own transaction: did a row change?"""
        with self.transaction() as cur:
            return self._exec(cur, sql, params).fetchone() is not None
