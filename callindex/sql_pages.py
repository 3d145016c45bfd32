"""``count`` and ``list_calls``, written once for both SQL engines.

The two engines keep their own SQL where the dialects differ (filters, full-text, vectors);
paging over the ``calls`` table is the same statement in both but for the placeholder, the
ORDER BY columns and how a stored record comes back (JSON text in SQLite, jsonb in PostgreSQL).
"""

from __future__ import annotations

import threading
from typing import Any

from callcenter.record import CallRecord
from callindex.api import CallFilter, CallPage, SortField, capped_total, check_count_limit, check_page


class SqlPages:
    """Mixin: the engine provides ``_lock``, ``_conn`` and the four dialect hooks below."""

    _lock: threading.RLock
    _conn: Any
    _mark: str  # the driver's placeholder: "?" (apsw) or "%s" (psycopg)

    def _where_clauses(self, filters: CallFilter | None) -> tuple[list[str], list[object]]:
        raise NotImplementedError

    def _order_by(self, sort: SortField, descending: bool) -> str:
        raise NotImplementedError

    def _record(self, stored: Any) -> CallRecord:
        raise NotImplementedError

    def _where_sql(self, filters: CallFilter | None) -> tuple[str, list[object]]:
        clauses, params = self._where_clauses(filters)
        return (f"WHERE {' AND '.join(clauses)}" if clauses else ""), list(params)

    def count(self, filters: CallFilter | None = None) -> int:
        where, params = self._where_sql(filters)
        with self._lock:
            return self._conn.execute(f"SELECT count(*) FROM calls {where}", params).fetchone()[0]

    def list_calls(
        self,
        filters: CallFilter | None = None,
        *,
        sort: SortField = SortField.STARTED_AT,
        descending: bool = True,
        limit: int = 50,
        offset: int = 0,
        count_limit: int | None = None,
    ) -> CallPage:
        check_page(limit, offset)
        check_count_limit(count_limit)
        where, params = self._where_sql(filters)
        m = self._mark
        if count_limit is None:
            count_sql, count_params = f"SELECT count(*) FROM calls {where}", params
        else:  # the count stops after count_limit + 1 rows
            count_sql = f"SELECT count(*) FROM (SELECT 1 FROM calls {where} LIMIT {m}) AS capped"
            count_params = [*params, count_limit + 1]
        page_sql = f"SELECT record FROM calls {where} ORDER BY {self._order_by(sort, descending)} LIMIT {m} OFFSET {m}"
        with self._lock:
            rows = self._conn.execute(page_sql, (*params, limit, offset)).fetchall()
            counted = self._conn.execute(count_sql, count_params).fetchone()[0]
        total, exact = capped_total(counted, count_limit)
        return CallPage(
            items=[self._record(r[0]) for r in rows], total=total, total_exact=exact, limit=limit, offset=offset
        )
