"""Dial attempts: one row per attempt, written (``reserved``) in its own committed transaction
*before* the dispatch is created, under a unique idempotency key ``<campaign>/<contact>/<n>``,
so two runs can never both own the same attempt and a crashed run leaves a row that the next
run reconciles instead of dialling again. Then ``sending``, ``dispatched``, ``ended`` and
``closed`` (or ``cancelled``: never dialled), each a conditional write."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from callcenter.outcomes import CallOutcome
from orchestration.defs.dialing.ledger.sql import LedgerSql, _dt, _ts


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


class ContactHistory(NamedTuple):
    attempts: int  # reserved, dispatched or closed (cancelled ones never rang)
    open: bool
    last_outcome: CallOutcome | None
    last_closed_at: datetime | None


def attempt_key(campaign_id: str, contact_id: str, attempt_number: int) -> str:
    return f"{campaign_id}/{contact_id}/{attempt_number}"


_OUTCOMES = {o.value: o for o in CallOutcome}

_ATTEMPT_COLUMNS = (
    "attempt_id, idempotency_key, campaign_id, contact_id, attempt_number, phone_number, call_id, status, "
    "reserved_at, dispatched_at, closed_at, outcome, sip_status_code, dispatch_id, abandoned, note"
)


class Attempts(LedgerSql):
    """Reserve, send, dispatch, end, close or cancel an attempt; read attempts and their counts."""

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
