"""The dial ledger's durable store: SQLite locally, PostgreSQL in production, one interface.

Every attempt is a row written (``reserved``) in its own committed transaction *before*
the dispatch is created, under a unique idempotency key ``<campaign>/<contact>/<n>``, so
two runs can never both own the same attempt and a crashed run leaves a row that the next
run reconciles instead of dialling again. Times are stored as UTC epoch seconds so the
same SQL runs on both engines.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NamedTuple

from callcenter.outcomes import CallOutcome
from orchestration.defs.dialing.contacts import Contact


class AttemptStatus(StrEnum):
    RESERVED = "reserved"  # written, dispatch not yet sent: a crashed run's is sent by the next tick
    # The dispatch is being sent, or was and LiveKit's answer never came: it may have rung, so it
    # is never sent again; its report closes it, or it times out as failed.
    SENDING = "sending"
    DISPATCHED = "dispatched"  # agent dispatch created: the call is (or was) live
    # LiveKit said the call's room finished (its webhook): the call slot is free, the outcome
    # still comes from the session report (or the report timeout), so it stays open for that.
    ENDED = "ended"
    CLOSED = "closed"  # outcome known
    CANCELLED = "cancelled"  # never dialled (dispatch refused, campaign stopped): not an attempt


# Attempts that hold a call slot and wait for an outcome.
LIVE_STATUSES = (AttemptStatus.RESERVED.value, AttemptStatus.SENDING.value, AttemptStatus.DISPATCHED.value)
# Attempts still waiting for an outcome: the live ones and those whose room has ended.
OPEN_STATUSES = (*LIVE_STATUSES, AttemptStatus.ENDED.value)


class CampaignState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Attempt:
    attempt_id: str
    idempotency_key: str
    campaign_id: str
    contact_id: str
    attempt_number: int
    phone_number: str
    call_id: str
    status: AttemptStatus
    reserved_at: datetime
    dispatched_at: datetime | None = None
    closed_at: datetime | None = None
    outcome: CallOutcome | None = None
    sip_status_code: int | None = None
    dispatch_id: str | None = None
    abandoned: bool | None = None
    note: str | None = None


class RegistryImport(NamedTuple):
    status: str  # "imported" | "held" (a large shrink refused: previous list kept) | "failed"
    numbers: int
    digest: str | None
    detail: str | None
    at: datetime


class ContactHistory(NamedTuple):
    attempts: int  # reserved, dispatched or closed (cancelled ones never rang)
    open: bool
    last_outcome: CallOutcome | None
    last_closed_at: datetime | None


SCHEMA = [
    """CREATE TABLE IF NOT EXISTS campaign_controls (
        campaign_id TEXT PRIMARY KEY, state TEXT NOT NULL, reason TEXT, updated_at DOUBLE PRECISION NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS campaign_contacts (
        campaign_id TEXT NOT NULL, contact_id TEXT NOT NULL, position INTEGER NOT NULL,
        phone_number TEXT NOT NULL, name TEXT, time_zones TEXT NOT NULL, zone_source TEXT NOT NULL,
        fields TEXT NOT NULL, PRIMARY KEY (campaign_id, contact_id))""",
    """CREATE TABLE IF NOT EXISTS do_not_call (
        phone_number TEXT NOT NULL, source TEXT NOT NULL, campaign_id TEXT, call_id TEXT,
        added_at DOUBLE PRECISION NOT NULL, PRIMARY KEY (phone_number, source))""",
    """CREATE TABLE IF NOT EXISTS dial_attempts (
        attempt_id TEXT PRIMARY KEY, idempotency_key TEXT NOT NULL UNIQUE,
        campaign_id TEXT NOT NULL, contact_id TEXT NOT NULL, attempt_number INTEGER NOT NULL,
        phone_number TEXT NOT NULL, call_id TEXT NOT NULL UNIQUE, status TEXT NOT NULL,
        reserved_at DOUBLE PRECISION NOT NULL, dispatched_at DOUBLE PRECISION, closed_at DOUBLE PRECISION,
        outcome TEXT, sip_status_code INTEGER, dispatch_id TEXT, abandoned BOOLEAN, note TEXT)""",
    "CREATE INDEX IF NOT EXISTS campaign_contacts_order ON campaign_contacts (campaign_id, position)",
    "CREATE INDEX IF NOT EXISTS dial_attempts_campaign ON dial_attempts (campaign_id, contact_id)",
    "CREATE INDEX IF NOT EXISTS dial_attempts_status ON dial_attempts (status)",
    "CREATE INDEX IF NOT EXISTS dial_attempts_phone ON dial_attempts (phone_number, status)",
    """CREATE TABLE IF NOT EXISTS dialing_leases (
        name TEXT PRIMARY KEY, holder TEXT NOT NULL, expires_at DOUBLE PRECISION NOT NULL)""",
    # The last import of each do-not-call registry file: a campaign whose registry never
    # imported, or whose last import failed, dials nobody.
    """CREATE TABLE IF NOT EXISTS do_not_call_imports (
        source TEXT PRIMARY KEY, status TEXT NOT NULL, numbers INTEGER NOT NULL, digest TEXT, detail TEXT,
        at DOUBLE PRECISION NOT NULL)""",
    # Watermarks of sweeps over the bucket (e.g. inbound calls' do-not-call requests).
    """CREATE TABLE IF NOT EXISTS dialing_marks (name TEXT PRIMARY KEY, at DOUBLE PRECISION NOT NULL)""",
]

_ATTEMPT_COLUMNS = (
    "attempt_id, idempotency_key, campaign_id, contact_id, attempt_number, phone_number, call_id, status, "
    "reserved_at, dispatched_at, closed_at, outcome, sip_status_code, dispatch_id, abandoned, note"
)


def _ts(dt: datetime | None) -> float | None:
    if dt is None:
        return None
    if dt.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return dt.timestamp()


def _dt(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=UTC)


_OUTCOMES = {o.value: o for o in CallOutcome}


def attempt_key(campaign_id: str, contact_id: str, attempt_number: int) -> str:
    return f"{campaign_id}/{contact_id}/{attempt_number}"


class DialStore:
    """The ledger API. Subclasses supply the connection and the transaction."""

    engine: str = "sql"
    _placeholder = "?"

    # --- engine hooks ---------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Any]:  # yields a cursor-like object with execute()
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _sql(self, sql: str) -> str:
        return sql if self._placeholder == "?" else sql.replace("?", self._placeholder)

    def _exec(self, cur: Any, sql: str, params: Iterable[Any] = ()) -> Any:
        return cur.execute(self._sql(sql), tuple(params))

    def _many(self, cur: Any, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cur.executemany(self._sql(sql), rows)

    def migrate(self) -> None:
        with self.transaction() as cur:
            for stmt in SCHEMA:
                cur.execute(stmt)

    # --- campaign controls ----------------------------------------------------------
    def set_campaign_state(self, campaign_id: str, state: CampaignState, reason: str, at: datetime) -> None:
        with self.transaction() as cur:
            self._exec(
                cur,
                "INSERT INTO campaign_controls (campaign_id, state, reason, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (campaign_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, "
                "updated_at = excluded.updated_at",
                (campaign_id, state.value, reason, _ts(at)),
            )

    def campaign_state(self, campaign_id: str) -> tuple[CampaignState, str | None]:
        with self.transaction() as cur:
            row = self._exec(
                cur, "SELECT state, reason FROM campaign_controls WHERE campaign_id = ?", (campaign_id,)
            ).fetchone()
        return (CampaignState(row[0]), row[1]) if row else (CampaignState.ACTIVE, None)

    # --- contacts -------------------------------------------------------------------
    def replace_contacts(self, campaign_id: str, contacts: list[Contact]) -> None:
        rows = [
            (
                campaign_id,
                c.contact_id,
                i,
                c.phone_number,
                c.name,
                ",".join(c.time_zones),
                c.zone_source,
                json.dumps(c.fields, sort_keys=True, default=str),
            )
            for i, c in enumerate(contacts)
        ]
        with self.transaction() as cur:
            self._exec(cur, "DELETE FROM campaign_contacts WHERE campaign_id = ?", (campaign_id,))
            self._many(
                cur,
                "INSERT INTO campaign_contacts (campaign_id, contact_id, position, phone_number, name, time_zones, "
                "zone_source, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def load_contacts(self, campaign_id: str, with_fields: bool = False) -> list[Contact]:
        """In list order. Without ``with_fields`` only what planning needs is read (no name, no fields)."""
        cols = "contact_id, phone_number, time_zones" + (", name, zone_source, fields" if with_fields else "")
        with self.transaction() as cur:
            rows = self._exec(
                cur, f"SELECT {cols} FROM campaign_contacts WHERE campaign_id = ? ORDER BY position", (campaign_id,)
            ).fetchall()
        # Few distinct zone lists: parse each once and share the tuple.
        zones = {z: tuple(x for x in z.split(",") if x) for z in {r[2] for r in rows}}
        if with_fields:
            return [Contact(r[0], r[1], r[3], zones[r[2]], r[4], json.loads(r[5])) for r in rows]
        return [Contact(r[0], r[1], None, zones[r[2]], "") for r in rows]

    def contact_profile(self, campaign_id: str, contact_id: str) -> tuple[str | None, dict[str, Any]]:
        """The contact's name and custom columns (what the agent's script may use)."""
        with self.transaction() as cur:
            row = self._exec(
                cur,
                "SELECT name, fields FROM campaign_contacts WHERE campaign_id = ? AND contact_id = ?",
                (campaign_id, contact_id),
            ).fetchone()
        return (row[0], json.loads(row[1])) if row else (None, {})

    # --- do not call ----------------------------------------------------------------
    def add_do_not_call(
        self,
        numbers: Iterable[str],
        source: str,
        at: datetime,
        campaign_id: str | None = None,
        call_id: str | None = None,
    ) -> None:
        rows = [(n, source, campaign_id, call_id, _ts(at)) for n in numbers]
        with self.transaction() as cur:
            self._many(
                cur,
                "INSERT INTO do_not_call (phone_number, source, campaign_id, call_id, added_at) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (phone_number, source) DO NOTHING",
                rows,
            )

    def replace_do_not_call_source(self, source: str, numbers: Iterable[str], at: datetime) -> int:
        """A registry file re-imported: its numbers replace the previous import of the same source."""
        rows = [(n, source, None, None, _ts(at)) for n in set(numbers)]
        with self.transaction() as cur:
            self._exec(cur, "DELETE FROM do_not_call WHERE source = ?", (source,))
            self._many(
                cur,
                "INSERT INTO do_not_call (phone_number, source, campaign_id, call_id, added_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return len(rows)

    def do_not_call_numbers(self, source: str | None = None) -> set[str]:
        with self.transaction() as cur:
            if source is not None:
                rows = self._exec(cur, "SELECT phone_number FROM do_not_call WHERE source = ?", (source,))
                return {r[0] for r in rows.fetchall()}
            return {r[0] for r in self._exec(cur, "SELECT DISTINCT phone_number FROM do_not_call").fetchall()}

    def record_registry_import(
        self, source: str, status: str, numbers: int, digest: str | None, detail: str | None, at: datetime
    ) -> None:
        with self.transaction() as cur:
            self._exec(
                cur,
                "INSERT INTO do_not_call_imports (source, status, numbers, digest, detail, at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (source) DO UPDATE SET status = excluded.status, numbers = excluded.numbers, "
                "digest = excluded.digest, detail = excluded.detail, at = excluded.at",
                (source, status, numbers, digest, detail, _ts(at)),
            )

    def registry_imports(self) -> dict[str, RegistryImport]:
        with self.transaction() as cur:
            rows = self._exec(cur, "SELECT source, status, numbers, digest, detail, at FROM do_not_call_imports")
            return {r[0]: RegistryImport(r[1], int(r[2]), r[3], r[4], _dt(r[5])) for r in rows.fetchall()}

    def is_do_not_call(self, phone_number: str) -> bool:
        with self.transaction() as cur:
            return (
                self._exec(cur, "SELECT 1 FROM do_not_call WHERE phone_number = ?", (phone_number,)).fetchone()
                is not None
            )

    def do_not_call_counts(self) -> dict[str, int]:
        with self.transaction() as cur:
            rows = self._exec(cur, "SELECT source, COUNT(*) FROM do_not_call GROUP BY source").fetchall()
        return {r[0]: int(r[1]) for r in rows}

    # --- sweep watermarks ------------------------------------------------------------
    def mark(self, name: str) -> datetime | None:
        with self.transaction() as cur:
            row = self._exec(cur, "SELECT at FROM dialing_marks WHERE name = ?", (name,)).fetchone()
        return _dt(row[0]) if row else None

    def set_mark(self, name: str, at: datetime) -> None:
        with self.transaction() as cur:
            self._exec(
                cur,
                "INSERT INTO dialing_marks (name, at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at",
                (name, _ts(at)),
            )

    # --- attempts -------------------------------------------------------------------
    def history(self, campaign_id: str) -> dict[str, ContactHistory]:
        with self.transaction() as cur:
            rows = self._exec(
                cur,
                "SELECT contact_id, attempt_number, status, outcome, closed_at FROM dial_attempts "
                "WHERE campaign_id = ? AND status != ?",
                (campaign_id, AttemptStatus.CANCELLED.value),
            ).fetchall()
        # Unordered (no sort in the database): keep each contact's count, any open attempt,
        # and the outcome of its highest-numbered closed attempt.
        folded: dict[str, list[Any]] = {}
        closed = AttemptStatus.CLOSED.value
        for contact_id, number, status, outcome, closed_at in rows:
            f = folded.get(contact_id)
            if f is None:
                f = folded[contact_id] = [0, False, -1, None, None]
            f[0] += 1
            if status != closed:
                f[1] = True
            elif number > f[2]:
                f[2], f[3], f[4] = number, outcome, closed_at
        return {
            cid: ContactHistory(n, is_open, _OUTCOMES[o] if o else None, _dt(t))
            for cid, (n, is_open, _, o, t) in folded.items()
        }

    def reserve(self, attempt: Attempt) -> bool:
        """Record the attempt before dialling. False when another run already owns this key."""
        with self.transaction() as cur:
            row = self._exec(
                cur,
                f"INSERT INTO dial_attempts ({_ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 16)}) "
                "ON CONFLICT DO NOTHING RETURNING attempt_id",
                _attempt_row(attempt),
            ).fetchone()
        return row is not None

    def _wrote_row(self, sql: str, params: Sequence[Any]) -> bool:
        """Run one conditional write ending in RETURNING in its own transaction: did a row change?"""
        with self.transaction() as cur:
            return self._exec(cur, sql, params).fetchone() is not None

    def mark_sending(self, attempt_id: str) -> bool:
        """Committed right before the dispatch goes out. False when the reservation is gone
        (a stop cancelled it since): then nothing may be sent."""
        return self._wrote_row(
            "UPDATE dial_attempts SET status = ? WHERE attempt_id = ? AND status = ? RETURNING attempt_id",
            (AttemptStatus.SENDING.value, attempt_id, AttemptStatus.RESERVED.value),
        )

    def mark_dispatched(self, attempt_id: str, dispatch_id: str, at: datetime) -> bool:
        """False when the attempt was no longer open (closed by its report already)."""
        return self._wrote_row(
            "UPDATE dial_attempts SET status = ?, dispatch_id = ?, dispatched_at = ? "
            "WHERE attempt_id = ? AND status IN (?, ?) RETURNING attempt_id",
            (
                AttemptStatus.DISPATCHED.value,
                dispatch_id,
                _ts(at),
                attempt_id,
                AttemptStatus.RESERVED.value,
                AttemptStatus.SENDING.value,
            ),
        )

    def cancel(self, attempt_id: str, note: str, at: datetime) -> None:
        """Never dialled (not sent, or refused by LiveKit): free the idempotency key so the
        contact's attempt number is reused."""
        with self.transaction() as cur:
            self._exec(
                cur,
                "UPDATE dial_attempts SET status = ?, note = ?, closed_at = ?, idempotency_key = idempotency_key || '#' || attempt_id "
                "WHERE attempt_id = ? AND status IN (?, ?)",
                (
                    AttemptStatus.CANCELLED.value,
                    note,
                    _ts(at),
                    attempt_id,
                    AttemptStatus.RESERVED.value,
                    AttemptStatus.SENDING.value,
                ),
            )

    def close_attempt(
        self,
        call_id: str,
        outcome: CallOutcome,
        at: datetime,
        sip_status_code: int | None = None,
        abandoned: bool | None = None,
        note: str | None = None,
    ) -> bool:
        """Close the open attempt of ``call_id``; False when already closed (reports are idempotent)."""
        return self._wrote_row(
            "UPDATE dial_attempts SET status = ?, outcome = ?, closed_at = ?, sip_status_code = ?, abandoned = ?, note = ? "
            "WHERE call_id = ? AND status IN (?, ?, ?, ?) RETURNING attempt_id",
            (
                AttemptStatus.CLOSED.value,
                outcome.value,
                _ts(at),
                sip_status_code,
                abandoned,
                note,
                call_id,
                *OPEN_STATUSES,
            ),
        )

    def mark_ended(self, call_id: str, note: str) -> bool:
        """LiveKit ended the call's room: free its call slot now. The outcome still comes from the
        session report (``close_attempt``); False when the attempt is not live (closed, or ended before)."""
        return self._wrote_row(
            "UPDATE dial_attempts SET status = ?, note = ? WHERE call_id = ? AND status IN (?, ?) RETURNING attempt_id",
            (AttemptStatus.ENDED.value, note, call_id, AttemptStatus.SENDING.value, AttemptStatus.DISPATCHED.value),
        )

    def attempts(
        self, statuses: Iterable[AttemptStatus] | None = None, campaign_id: str | None = None
    ) -> list[Attempt]:
        where, params = [], []
        if statuses is not None:
            st = [s.value for s in statuses]
            where.append(f"status IN ({', '.join('?' * len(st))})")
            params += st
        if campaign_id is not None:
            where.append("campaign_id = ?")
            params.append(campaign_id)
        sql = f"SELECT {_ATTEMPT_COLUMNS} FROM dial_attempts" + (f" WHERE {' AND '.join(where)}" if where else "")
        with self.transaction() as cur:
            rows = self._exec(cur, sql + " ORDER BY reserved_at, attempt_id", params).fetchall()
        return [_attempt(r) for r in rows]

    def attempt_by_call(self, call_id: str) -> Attempt | None:
        with self.transaction() as cur:
            row = self._exec(
                cur, f"SELECT {_ATTEMPT_COLUMNS} FROM dial_attempts WHERE call_id = ?", (call_id,)
            ).fetchone()
        return _attempt(row) if row else None

    def number_in_call(self, phone_number: str) -> str | None:
        """The campaign of an open attempt to this number, in any campaign; None when none."""
        with self.transaction() as cur:
            row = self._exec(
                cur,
                "SELECT campaign_id FROM dial_attempts WHERE phone_number = ? AND status IN (?, ?, ?, ?) LIMIT 1",
                (phone_number, *OPEN_STATUSES),
            ).fetchone()
        return row[0] if row else None

    def live_counts(self) -> dict[str, int]:
        """Attempts reserved, sending or dispatched and not yet closed, per campaign: calls holding capacity."""
        with self.transaction() as cur:
            rows = self._exec(
                cur,
                "SELECT campaign_id, COUNT(*) FROM dial_attempts WHERE status IN (?, ?, ?) GROUP BY campaign_id",
                LIVE_STATUSES,
            ).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def outcome_counts(self, campaign_id: str, since: datetime | None = None) -> dict[str, int]:
        sql = "SELECT COALESCE(outcome, status), COUNT(*) FROM dial_attempts WHERE campaign_id = ? AND status != ?"
        params: list[Any] = [campaign_id, AttemptStatus.CANCELLED.value]
        if since is not None:
            sql += " AND reserved_at >= ?"
            params.append(_ts(since))
        with self.transaction() as cur:
            rows = self._exec(cur, sql + " GROUP BY COALESCE(outcome, status)", params).fetchall()
        return {r[0]: int(r[1]) for r in rows}

    def abandonment(self, campaign_id: str, since: datetime) -> tuple[int, int]:
        """(abandoned, answered) over closed answered-type attempts since ``since``."""
        with self.transaction() as cur:
            row = self._exec(
                cur,
                "SELECT COALESCE(SUM(CASE WHEN abandoned THEN 1 ELSE 0 END), 0), COUNT(*) FROM dial_attempts "
                "WHERE campaign_id = ? AND status = ? AND abandoned IS NOT NULL AND closed_at >= ?",
                (campaign_id, AttemptStatus.CLOSED.value, _ts(since)),
            ).fetchone()
        return int(row[0]), int(row[1])

    # --- run lease ------------------------------------------------------------------
    def acquire_lease(self, name: str, holder: str, now: datetime, ttl_s: float) -> bool:
        """One dialing tick at a time: capacity counts are only right if ticks never overlap."""
        with self.transaction() as cur:
            self._exec(
                cur,
                "INSERT INTO dialing_leases (name, holder, expires_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at "
                "WHERE dialing_leases.expires_at < ? OR dialing_leases.holder = excluded.holder",
                (name, holder, _ts(now) + ttl_s, _ts(now)),
            )
            row = self._exec(cur, "SELECT holder FROM dialing_leases WHERE name = ?", (name,)).fetchone()
        return row is not None and row[0] == holder

    def release_lease(self, name: str, holder: str) -> None:
        with self.transaction() as cur:
            self._exec(cur, "DELETE FROM dialing_leases WHERE name = ? AND holder = ?", (name, holder))


def _attempt_row(a: Attempt) -> tuple[Any, ...]:
    return (
        a.attempt_id,
        a.idempotency_key,
        a.campaign_id,
        a.contact_id,
        a.attempt_number,
        a.phone_number,
        a.call_id,
        a.status.value,
        _ts(a.reserved_at),
        _ts(a.dispatched_at),
        _ts(a.closed_at),
        a.outcome.value if a.outcome else None,
        a.sip_status_code,
        a.dispatch_id,
        a.abandoned,
        a.note,
    )


def _attempt(r: tuple[Any, ...]) -> Attempt:
    return Attempt(
        attempt_id=r[0],
        idempotency_key=r[1],
        campaign_id=r[2],
        contact_id=r[3],
        attempt_number=int(r[4]),
        phone_number=r[5],
        call_id=r[6],
        status=AttemptStatus(r[7]),
        reserved_at=_dt(r[8]),  # type: ignore[arg-type]
        dispatched_at=_dt(r[9]),
        closed_at=_dt(r[10]),
        outcome=CallOutcome(r[11]) if r[11] else None,
        sip_status_code=r[12],
        dispatch_id=r[13],
        abandoned=None if r[14] is None else bool(r[14]),
        note=r[15],
    )


class SqliteDialStore(DialStore):
    """A file under CALLCENTER_DATA_DIR; WAL so the UI can read while a tick writes."""

    engine = "sqlite"

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # an attempt row must survive a power cut before we dial
        self._lock = threading.RLock()
        self.migrate()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def close(self) -> None:
        self._conn.close()


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


def open_store(sqlite_path: Path | str | None = None, postgres_dsn: str | None = None) -> DialStore:
    if postgres_dsn:
        return PostgresDialStore(postgres_dsn)
    if sqlite_path:
        return SqliteDialStore(sqlite_path)
    raise ValueError(
        "no dialing ledger configured: set CALLCENTER_DIALING_DSN (PostgreSQL) or CALLCENTER_DATA_DIR (SQLite)"
    )
