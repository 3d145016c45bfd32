"""Calls not in the index yet, and why: requested for post-call and still waiting (pending), or
seen by post-call and refused (an unreadable session report, a call that failed to process).

Post-call writes these rows (``CallIndex.mark_unindexed``: the ``call_index`` asset the ones it
could not index, the ``requested_calls_indexed`` check the pending ones); indexing a call clears
its row in the same transaction as the call's own row. The browser lists them, so what used to
live only in Dagster's run history and check metadata is where analysts look.

A row holds the call id, its day, the state, a reason and since when: never words of the call or
a phone number. Reasons are error types and locations (``literal_error at schema_version``), never
an input; ``UnindexedCall`` refuses anything that is not a call id.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callcenter.ids import is_call_id

REASON_MAX_CHARS = 300


class UnindexedState(StrEnum):
    PENDING = "pending"  # requested for post-call, not indexed yet (a batch failed, or is still running)
    UNREADABLE = "unreadable"  # its session report could not be read (missing, not JSON, not a SessionReport)
    FAILED = "failed"  # the report was read, but processing the call failed before it had a row


class UnindexedCall(BaseModel):
    """One call that is not in the index (at ``generation`` of its session report, when known)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_id: str
    day: date = Field(description="the call's UTC day (its place in the recordings bucket)")
    state: UnindexedState
    reason: str = Field(max_length=REASON_MAX_CHARS, description="error type and location, never the input")
    since: datetime = Field(description="when it was first seen in this state (UTC)")
    generation: int | None = Field(None, ge=0, description="the session report's object generation")

    @field_validator("call_id")
    @classmethod
    def _a_call_id(cls, value: str) -> str:
        if not is_call_id(value):
            raise ValueError("not a call id (call-<uuid7>)")
        return value

    @field_validator("since")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("since must carry its time zone (UTC)")
        return value


class UnindexedPage(BaseModel):
    items: list[UnindexedCall]
    total: int
    limit: int
    offset: int


def merged(existing: UnindexedCall | None, new: UnindexedCall) -> UnindexedCall | None:
    """What to store when ``new`` arrives for a call that has ``existing``; None: keep ``existing``.

    - News of an older report generation never replaces a newer one's.
    - Pending never hides what post-call found (unreadable, failed) in the same or a newer generation:
      a retried batch's first, failed attempt must not turn an unreadable report back into "pending".
    - The same state of the same generation keeps its first ``since``: how long it has waited.
    """
    if existing is None:
        return new
    old_gen, new_gen = existing.generation or 0, new.generation or 0
    if new_gen < old_gen:
        return None
    if new.state is UnindexedState.PENDING and existing.state is not UnindexedState.PENDING and new_gen == old_gen:
        return None
    if new.state is existing.state and new_gen == old_gen:
        return new.model_copy(update={"since": min(existing.since, new.since)})
    return new


class SqlUnindexed:
    """``mark_unindexed``, ``list_unindexed`` and ``count_unindexed`` for both SQL engines.

    The engine provides ``_lock``, ``_conn``, ``_mark`` and the hooks below. Rows of calls already
    indexed from the same or a newer generation are never listed (a pending row written while
    the call's batch committed is harmless), and indexing clears them (``_clear_unindexed_sql``)."""

    _mark: str
    _conn: Any

    # -- dialect hooks
    def _stored_generation_sql(self) -> str:  # the calls row's source_generation, as an integer (alias c)
        raise NotImplementedError

    def _transaction(self):
        raise NotImplementedError

    def _unindexed_params(self, row: UnindexedCall) -> tuple:
        raise NotImplementedError

    def _unindexed_row(self, stored: tuple) -> UnindexedCall:
        raise NotImplementedError

    def _unindexed_rows(self, sql: str, params: list) -> list[tuple]:
        return self._conn.execute(sql, params).fetchall()

    # -- shared SQL
    _COLUMNS = "call_id, day, state, reason, since, generation"

    def _clear_unindexed_sql(self) -> str:
        m = self._mark
        return f"DELETE FROM unindexed_calls WHERE call_id = {m} AND COALESCE(generation, 0) <= {m}"

    def _visible(self) -> str:
        """Rows whose call is not indexed from their generation or a newer one."""
        return (
            "FROM unindexed_calls u LEFT JOIN calls c ON c.call_id = u.call_id "
            f"WHERE (c.call_id IS NULL OR (u.generation IS NOT NULL AND "
            f"COALESCE({self._stored_generation_sql()}, 0) < u.generation))"
        )

    def mark_unindexed(self, calls) -> int:
        """Record calls that are not indexed, in one transaction (see ``merged`` for which row
        wins); a call already indexed from the same or a newer generation is left out. Returns
        the rows written."""
        rows = list(calls)
        m = self._mark
        cols = self._COLUMNS
        upsert = (
            f"INSERT INTO unindexed_calls ({cols}) VALUES ({', '.join([m] * 6)}) ON CONFLICT (call_id) DO UPDATE SET "
            "day = excluded.day, state = excluded.state, reason = excluded.reason, since = excluded.since, "
            "generation = excluded.generation"
        )
        written = 0
        with self._lock, self._transaction():
            for row in rows:
                indexed = self._conn.execute(
                    f"SELECT COALESCE({self._stored_generation_sql()}, 0) FROM calls c WHERE c.call_id = {m}",
                    (row.call_id,),
                ).fetchone()
                if indexed is not None and (row.generation is None or indexed[0] >= row.generation):
                    continue
                found = self._conn.execute(
                    f"SELECT {cols} FROM unindexed_calls WHERE call_id = {m}", (row.call_id,)
                ).fetchone()
                keep = merged(self._unindexed_row(found) if found else None, row)
                if keep is None:
                    continue
                self._conn.execute(upsert, self._unindexed_params(keep))
                written += 1
        return written

    def list_unindexed(self, state: UnindexedState | None = None, *, limit: int = 50, offset: int = 0) -> UnindexedPage:
        from callindex.api import check_page

        check_page(limit, offset)
        m = self._mark
        where, params = "", []
        if state is not None:
            where, params = f" AND u.state = {m}", [UnindexedState(state).value]
        cols = ", ".join(f"u.{c.strip()}" for c in self._COLUMNS.split(","))
        with self._lock:
            rows = self._unindexed_rows(
                f"SELECT {cols} {self._visible()}{where} ORDER BY u.since, u.call_id LIMIT {m} OFFSET {m}",
                [*params, limit, offset],
            )
            total = self._unindexed_rows(f"SELECT count(*) {self._visible()}{where}", params)
        return UnindexedPage(
            items=[self._unindexed_row(r) for r in rows],
            total=total[0][0] if total else 0,
            limit=limit,
            offset=offset,
        )

    def count_unindexed(self) -> dict[UnindexedState, int]:
        """How many calls are not indexed yet, by state (every state, zeros included)."""
        with self._lock:
            rows = self._unindexed_rows(f"SELECT u.state, count(*) {self._visible()} GROUP BY u.state", [])
        counts = dict.fromkeys(UnindexedState, 0)
        counts.update({UnindexedState(s): n for s, n in rows})
        return counts
