"""The do-not-call list: numbers by source (``call``: asked during a call; ``registry:<file>``:
an operator's registry file), and the last import of each registry (registries fail closed:
``orchestration/defs/dialing/dnc.py`` reads them, the planner and the tick check them)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import NamedTuple

from orchestration.defs.dialing.ledger.sql import LedgerSql, _dt, _ts


class RegistryImport(NamedTuple):
    status: str  # "imported" | "held" (a large shrink refused: previous list kept) | "failed"
    numbers: int
    digest: str | None
    detail: str | None
    at: datetime


class DoNotCall(LedgerSql):
    """Add, replace and read suppressed numbers; record and read registry imports."""

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
