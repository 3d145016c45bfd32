"""The embedded call index: one SQLite file (WAL) with FTS5 for text and sqlite-vec for vectors.

Why SQLite (docs/call-index.md): the Dagster run writes while the browser reads from another
process, FTS5 updates incrementally inside the same transaction as the row, and sqlite-vec's
binary-quantised scan plus exact re-ranking keeps vector search fast without an ANN index.
Python's bundled sqlite3 here cannot load extensions, so the connection is apsw's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

import apsw
import numpy as np
import sqlite_vec

from callcenter.record import CallRecord
from callindex.api import (
    CallFilter,
    CallPage,
    SearchHit,
    SortField,
    check_embedding,
    check_page,
)
from callindex.query import fts5_match
from callindex.tags import filter_tags, tag_match

# Candidates fetched by the binary (Hamming) scan per requested hit, then re-ranked exactly.
RERANK_FACTOR = 4  # sqlite-vec's top-k cost grows with k: keep the candidate list short
_VEC_MAX_K = 4096  # sqlite-vec's ceiling for k

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL UNIQUE,
    campaign_id TEXT NOT NULL,          -- '' when the call had no campaign
    direction TEXT NOT NULL,
    outcome TEXT NOT NULL,
    started_at INTEGER NOT NULL,        -- epoch milliseconds, UTC
    duration_s REAL NOT NULL,
    sentiment TEXT NOT NULL,            -- '' until analysed
    disposition TEXT NOT NULL,
    follow_up_needed INTEGER NOT NULL,  -- 1, 0 or -1 (unknown)
    analysis_status TEXT NOT NULL,
    status TEXT NOT NULL,
    record TEXT NOT NULL,               -- the CallRecord as JSON
    embedding BLOB NOT NULL             -- float32[384], for exact re-ranking
);
CREATE INDEX IF NOT EXISTS calls_started ON calls(started_at);
CREATE INDEX IF NOT EXISTS calls_campaign_started ON calls(campaign_id, started_at);
CREATE INDEX IF NOT EXISTS calls_outcome_started ON calls(outcome, started_at);
-- campaign + outcome filters (the browser's common list) count from this index alone
CREATE INDEX IF NOT EXISTS calls_campaign_outcome_started ON calls(campaign_id, outcome, started_at);
CREATE INDEX IF NOT EXISTS calls_duration ON calls(duration_s);
-- ``tags`` holds one token per filter value (campaign, outcome, day, month, ...), so a filtered
-- search intersects posting lists inside FTS5 instead of ranking every match of a common word.
CREATE VIRTUAL TABLE IF NOT EXISTS calls_fts USING fts5(
    transcript, summary, intent, tags, tokenize = 'porter unicode61'
);
CREATE VIRTUAL TABLE IF NOT EXISTS calls_vec USING vec0(
    id INTEGER PRIMARY KEY,
    campaign_id TEXT PARTITION KEY,   -- a campaign-filtered search scans only that campaign's vectors
    embedding bit[384],
    direction TEXT,
    outcome TEXT,
    started_at INTEGER,
    sentiment TEXT,
    disposition TEXT,
    follow_up_needed INTEGER,
    analysis_status TEXT,
    status TEXT
);
"""

_SORT_COLUMNS = {
    SortField.STARTED_AT: "started_at",
    SortField.DURATION: "duration_s",
    SortField.CAMPAIGN: "campaign_id",
    SortField.OUTCOME: "outcome",
}


def _epoch_ms(dt) -> int:
    return int(dt.timestamp() * 1000)


def _filter_values(record: CallRecord) -> dict[str, object]:
    """The denormalised filter columns, shared by ``calls`` and ``calls_vec`` (no NULLs: vec0 refuses them)."""
    follow_up = record.follow_up_needed
    return {
        "campaign_id": record.campaign_id or "",
        "direction": record.direction.value,
        "outcome": record.outcome.value,
        "started_at": _epoch_ms(record.started_at),
        "sentiment": record.sentiment.value if record.sentiment else "",
        "disposition": record.disposition or "",
        "follow_up_needed": -1 if follow_up is None else int(follow_up),
        "analysis_status": record.analysis_status.value,
        "status": record.status.value,
    }


def _where(filters: CallFilter | None, alias: str = "") -> tuple[list[str], list[object]]:
    """SQL conditions over the filter columns (same names in ``calls`` and ``calls_vec``)."""
    if filters is None:
        return [], []
    p = f"{alias}." if alias else ""
    clauses: list[str] = []
    params: list[object] = []
    if filters.campaign_id is not None:
        clauses.append(f"{p}campaign_id = ?")
        params.append(filters.campaign_id)
    if filters.outcomes:
        clauses.append(f"{p}outcome IN ({', '.join('?' for _ in filters.outcomes)})")
        params.extend(o.value for o in filters.outcomes)
    if filters.direction is not None:
        clauses.append(f"{p}direction = ?")
        params.append(filters.direction.value)
    if filters.started_from is not None:
        clauses.append(f"{p}started_at >= ?")
        params.append(_epoch_ms(filters.started_from))
    if filters.started_to is not None:
        clauses.append(f"{p}started_at < ?")
        params.append(_epoch_ms(filters.started_to))
    if filters.sentiment is not None:
        clauses.append(f"{p}sentiment = ?")
        params.append(filters.sentiment.value)
    if filters.disposition is not None:
        clauses.append(f"{p}disposition = ?")
        params.append(filters.disposition)
    if filters.follow_up_needed is not None:
        clauses.append(f"{p}follow_up_needed = ?")
        params.append(int(filters.follow_up_needed))
    if filters.analysis_status is not None:
        clauses.append(f"{p}analysis_status = ?")
        params.append(filters.analysis_status.value)
    if filters.status is not None:
        clauses.append(f"{p}status = ?")
        params.append(filters.status.value)
    return clauses, params


class SqliteCallIndex:
    """``CallIndex`` over one SQLite file; safe to share between threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = apsw.Connection(str(path))
        self._conn.set_busy_timeout(30_000)  # a reader waits for the pipeline's write, never fails
        self._conn.enable_load_extension(True)
        self._conn.load_extension(sqlite_vec.loadable_path())
        self._conn.enable_load_extension(False)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-262144")  # 256 MiB page cache
        self._conn.execute("PRAGMA mmap_size=4294967296")
        with self._conn:
            self._conn.execute(_SCHEMA)
            # bm25 weights: transcript, summary, intent, tags (tags never score).
            self._conn.execute("INSERT INTO calls_fts (calls_fts, rank) VALUES ('rank', 'bm25(1.0, 2.0, 1.5, 0.0)')")
        # Planner statistics for the indexes above (cheap: SQLite only analyses what needs it).
        self._conn.execute("PRAGMA optimize=0x10002")

    # -- writes ---------------------------------------------------------------------------

    def upsert(self, record: CallRecord, embedding: Sequence[float]) -> None:
        self.upsert_many([(record, embedding)])

    def upsert_many(self, items: Iterable[tuple[CallRecord, Sequence[float]]]) -> int:
        """Upsert calls in one transaction: all of them land, or none do."""
        n = 0
        with self._lock, self._conn:
            for record, embedding in items:
                self._upsert_one(record, embedding)
                n += 1
        return n

    def _upsert_one(self, record: CallRecord, embedding: Sequence[float]) -> None:
        check_embedding(embedding)
        vec = np.asarray(embedding, dtype=np.float32)
        vec_blob = vec.tobytes()
        cols = _filter_values(record)
        row = self._conn.execute("SELECT id FROM calls WHERE call_id = ?", (record.call_id,)).fetchone()
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        values = list(cols.values())
        if row is None:
            self._conn.execute(
                f"INSERT INTO calls (call_id, {names}, duration_s, record, embedding) VALUES (?, {marks}, ?, ?, ?)",
                (record.call_id, *values, record.duration_s, record.model_dump_json(), vec_blob),
            )
            rowid = self._conn.last_insert_rowid()
        else:
            rowid = row[0]
            sets = ", ".join(f"{c} = ?" for c in cols)
            self._conn.execute(
                f"UPDATE calls SET {sets}, duration_s = ?, record = ?, embedding = ? WHERE id = ?",
                (*values, record.duration_s, record.model_dump_json(), vec_blob, rowid),
            )
            self._conn.execute("DELETE FROM calls_fts WHERE rowid = ?", (rowid,))
            self._conn.execute("DELETE FROM calls_vec WHERE id = ?", (rowid,))
        analysis = record.analysis
        self._conn.execute(
            "INSERT INTO calls_fts (rowid, transcript, summary, intent, tags) VALUES (?, ?, ?, ?, ?)",
            (
                rowid,
                record.transcript_text,
                analysis.summary if analysis else "",
                analysis.customer_intent if analysis else "",
                " ".join(filter_tags(cols)),
            ),
        )
        self._conn.execute(
            f"INSERT INTO calls_vec (id, embedding, {names}) VALUES (?, vec_quantize_binary(?), {marks})",
            (rowid, vec_blob, *values),
        )

    def delete(self, call_id: str) -> bool:
        with self._lock, self._conn:
            row = self._conn.execute("SELECT id FROM calls WHERE call_id = ?", (call_id,)).fetchone()
            if row is None:
                return False
            for sql in (
                "DELETE FROM calls_fts WHERE rowid = ?",
                "DELETE FROM calls_vec WHERE id = ?",
                "DELETE FROM calls WHERE id = ?",
            ):
                self._conn.execute(sql, (row[0],))
        return True

    # -- reads ----------------------------------------------------------------------------

    def get(self, call_id: str) -> CallRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT record FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        return CallRecord.model_validate_json(row[0]) if row else None

    def count(self, filters: CallFilter | None = None) -> int:
        clauses, params = _where(filters)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
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
    ) -> CallPage:
        check_page(limit, offset)
        clauses, params = _where(filters)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        direction = "DESC" if descending else "ASC"
        order = f"{_SORT_COLUMNS[SortField(sort)]} {direction}, id {direction}"
        with self._lock:
            rows = self._conn.execute(
                f"SELECT record FROM calls {where} ORDER BY {order} LIMIT ? OFFSET ?", (*params, limit, offset)
            ).fetchall()
            total = self._conn.execute(f"SELECT count(*) FROM calls {where}", params).fetchone()[0]
        return CallPage(
            items=[CallRecord.model_validate_json(r[0]) for r in rows], total=total, limit=limit, offset=offset
        )

    def search_text(self, query: str, filters: CallFilter | None = None, *, limit: int = 20) -> list[SearchHit]:
        check_page(limit, 0)
        match = fts5_match(query)
        if filters is not None and (tag_query := tag_match(filters)):
            match = f"({match}) AND tags : ({tag_query})"
        clauses, params = _where(filters)
        extra = "".join(f" AND {c}" for c in clauses)
        # FTS5 ranks first (its own query, so the planner never probes MATCH row by row), then
        # the exact filters run on the candidates. Tags make the candidates nearly exact; if the
        # filters still drop enough to starve the page, rank every match instead.
        cap = max(limit * 5, 100)
        with self._lock:
            for fts_limit in (cap, -1):
                candidates = self._conn.execute(
                    "SELECT rowid, rank FROM calls_fts WHERE calls_fts MATCH ? ORDER BY rank LIMIT ?",
                    (match, fts_limit),
                ).fetchall()
                if not candidates:
                    return []
                ranks = dict(candidates)
                marks = ", ".join("?" for _ in ranks)
                rows = self._conn.execute(
                    f"SELECT id, record FROM calls WHERE id IN ({marks}){extra}", (*ranks, *params)
                ).fetchall()
                if len(rows) >= limit or len(candidates) < cap:
                    break
            top = sorted(rows, key=lambda r: ranks[r[0]])[:limit]
            if not top:
                return []
            top_ids = [r[0] for r in top]
            snippets = dict(
                self._conn.execute(
                    "SELECT rowid, snippet(calls_fts, 0, '[', ']', '…', 16) FROM calls_fts "
                    f"WHERE calls_fts MATCH ? AND rowid IN ({', '.join('?' for _ in top_ids)})",
                    (match, *top_ids),
                ).fetchall()
            )
        return [
            SearchHit(record=CallRecord.model_validate_json(rec), score=-ranks[rid], snippet=snippets.get(rid))
            for rid, rec in top
        ]

    def search_vector(
        self, embedding: Sequence[float], filters: CallFilter | None = None, *, limit: int = 20
    ) -> list[SearchHit]:
        check_page(limit, 0)
        check_embedding(embedding)
        query = np.asarray(embedding, dtype=np.float32)
        k = min(limit * RERANK_FACTOR, _VEC_MAX_K)
        clauses, params = _where(filters)
        extra = "".join(f" AND {c}" for c in clauses)
        with self._lock:
            candidates = self._conn.execute(
                f"SELECT id FROM calls_vec WHERE embedding MATCH vec_quantize_binary(?) AND k = ?{extra}",
                (query.tobytes(), k, *params),
            ).fetchall()
            if not candidates:
                return []
            ids = [c[0] for c in candidates]
            rows = self._conn.execute(
                f"SELECT id, embedding FROM calls WHERE id IN ({', '.join('?' for _ in ids)})", ids
            ).fetchall()
            # Exact cosine over the binary scan's candidates restores float precision.
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
            sims = matrix @ query / np.where(norms == 0, 1.0, norms)
            best = np.argsort(-sims)[:limit]
            best_ids = [rows[i][0] for i in best]
            records = dict(
                self._conn.execute(
                    f"SELECT id, record FROM calls WHERE id IN ({', '.join('?' for _ in best_ids)})", best_ids
                ).fetchall()
            )
        return [
            SearchHit(record=CallRecord.model_validate_json(records[rows[i][0]]), score=float(sims[i])) for i in best
        ]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteCallIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
