"""The tick's lease (one dialing tick at a time: capacity counts are only right if ticks never
overlap) and the watermarks of sweeps over the bucket (``mark``/``set_mark``)."""

from __future__ import annotations

from datetime import datetime

from orchestration.defs.dialing.ledger.sql import LedgerSql, _dt, _ts


class LeasesAndMarks(LedgerSql):
    """Acquire, renew and release a named lease; read and move a named watermark."""

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

    def mark(self, name: str) -> datetime | None:
        with self.transaction() as cur:
            row = self._exec(cur, "SELECT at FROM dialing_marks WHERE name = ?", (name,)).fetchone()
        return _dt(row[0]) if row else None

    def marks(self, prefix: str) -> dict[str, datetime]:
        """Every mark whose name starts with ``prefix`` (callbacks: ``callback/<campaign>/...``)."""
        with self.transaction() as cur:
            rows = self._exec(
                cur, "SELECT name, at FROM dialing_marks WHERE substr(name, 1, ?) = ?", (len(prefix), prefix)
            ).fetchall()
        return {name: _dt(at) for name, at in rows}

    def set_mark(self, name: str, at: datetime) -> None:
        with self.transaction() as cur:
            self._exec(
                cur,
                "INSERT INTO dialing_marks (name, at) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET at = excluded.at",
                (name, _ts(at)),
            )
