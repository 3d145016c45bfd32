"""The embedded call index: one SQLite file (WAL) with FTS5 for text and sqlite-vec for vectors.

Why SQLite (docs/call-index.md): the Dagster run writes while the browser reads from another
process, FTS5 updates incrementally inside the same transaction as the row, and a scan of
binary-quantised codes (sqlite-vec's, mirrored in memory by ``code_cache``) plus exact
re-ranking keeps vector search fast without an ANN index.
Python's bundled sqlite3 here cannot load extensions, so the connection is apsw's.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import apsw
import numpy as np
import sqlite_vec

from callcenter.record import CallRecord
from callindex.api import (
    SENTIMENT_RANK,
    CallFilter,
    SearchHit,
    SortField,
    check_embedding,
    check_page,
)
from callindex.code_cache import CHANGES_SCHEMA, BinaryCodeCache, log_change, prune_changes
from callindex.query import fts5_match
from callindex.sql_pages import SqlPages
from callindex.tags import filter_tags, tag_match
from callindex.unindexed import SqlUnindexed, UnindexedCall, UnindexedState

# Candidates fetched by the binary (Hamming) scan per requested hit, then re-ranked exactly.
RERANK_FACTOR = 4
_VEC_MAX_K = 4096  # the widest candidate list (sqlite-vec's ceiling for k, kept for the calls-only path)
# A filter matching at most this many calls has every match re-ranked exactly (cheap, and exact).
EXACT_RERANK_MAX = 512

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
    embedding BLOB NOT NULL,            -- float32[384], for exact re-ranking
    -- Filter/sort columns that calls_vec lacks (vec0 tables cannot grow columns): NULL when unknown.
    persona_key TEXT,                   -- persona, case-folded
    contact_id TEXT,
    latency_p50_ms REAL,                -- voice-to-voice p50
    sentiment_rank INTEGER              -- SENTIMENT_RANK
);
CREATE INDEX IF NOT EXISTS calls_started ON calls(started_at);
CREATE INDEX IF NOT EXISTS calls_campaign_started ON calls(campaign_id, started_at);
CREATE INDEX IF NOT EXISTS calls_outcome_started ON calls(outcome, started_at);
-- campaign + outcome filters (the browser's common list) count from this index alone
CREATE INDEX IF NOT EXISTS calls_campaign_outcome_started ON calls(campaign_id, outcome, started_at);
CREATE INDEX IF NOT EXISTS calls_duration ON calls(duration_s);
-- _ADDED_COLUMNS' indexes are created after the migration below (older files lack the columns)
-- ``tags`` holds one token per filter value (campaign, outcome, day, month, ...), so a filtered
-- search intersects posting lists inside FTS5 instead of ranking every match of a common word.
CREATE VIRTUAL TABLE IF NOT EXISTS calls_fts USING fts5(
    transcript, summary, intent, tags, tokenize = 'porter unicode61'
);
-- Calls not in the index yet (callindex/unindexed.py): ids, day, state and reason only.
CREATE TABLE IF NOT EXISTS unindexed_calls (
    call_id TEXT PRIMARY KEY,
    day TEXT NOT NULL,                  -- YYYY-MM-DD, UTC
    state TEXT NOT NULL,                -- pending | unreadable | failed
    reason TEXT NOT NULL,
    since INTEGER NOT NULL,             -- epoch milliseconds, UTC
    generation INTEGER                  -- the session report's generation, when known
);
CREATE INDEX IF NOT EXISTS unindexed_since ON unindexed_calls(since);
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

# Columns added after the first release: (name, type, backfill from the stored record JSON).
_ADDED_COLUMNS = (
    ("persona_key", "TEXT", "lower(json_extract(record, '$.persona'))"),
    ("contact_id", "TEXT", "json_extract(record, '$.contact_id')"),
    ("latency_p50_ms", "REAL", "json_extract(record, '$.latency.voice_to_voice_p50_ms')"),
    (
        "sentiment_rank",
        "INTEGER",
        "CASE sentiment " + " ".join(f"WHEN '{s.value}' THEN {r}" for s, r in SENTIMENT_RANK.items()) + " END",
    ),
)
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS calls_persona_started ON calls(persona_key, started_at);
CREATE INDEX IF NOT EXISTS calls_contact_started ON calls(contact_id, started_at);
CREATE INDEX IF NOT EXISTS calls_latency ON calls(latency_p50_ms);
CREATE INDEX IF NOT EXISTS calls_sentiment_rank ON calls(sentiment_rank);
"""
# A vector search whose filters calls_vec cannot apply ranks every matching call exactly when
# there are at most this many; beyond, it post-filters the binary scan's widest candidate list.
EXACT_SCAN_MAX = 50_000

_SORT_COLUMNS = {
    SortField.STARTED_AT: "started_at",
    SortField.DURATION: "duration_s",
    SortField.CAMPAIGN: "campaign_id",
    SortField.OUTCOME: "outcome",
    SortField.LATENCY: "latency_p50_ms",
    SortField.SENTIMENT: "sentiment_rank",
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


def _calls_only_values(record: CallRecord) -> dict[str, object]:
    """The ``calls`` columns that ``calls_vec`` lacks."""
    return {
        "persona_key": record.persona.casefold() if record.persona is not None else None,
        "contact_id": record.contact_id,
        "latency_p50_ms": record.latency.voice_to_voice_p50_ms,
        "sentiment_rank": SENTIMENT_RANK[record.sentiment] if record.sentiment else None,
    }


def _calls_only_where(filters: CallFilter | None) -> tuple[list[str], list[object]]:
    """Conditions over the columns only ``calls`` has (``calls_vec`` cannot apply these)."""
    if filters is None:
        return [], []
    conditions = (
        ("persona_key = ?", filters.persona.casefold() if filters.persona is not None else None),
        ("contact_id = ?", filters.contact_id),
        ("duration_s >= ?", filters.min_duration_s),
        ("duration_s <= ?", filters.max_duration_s),
        ("latency_p50_ms >= ?", filters.min_latency_p50_ms),
        ("latency_p50_ms <= ?", filters.max_latency_p50_ms),
    )
    kept = [(c, v) for c, v in conditions if v is not None]
    return [c for c, _ in kept], [v for _, v in kept]


def _where(filters: CallFilter | None, *, vec: bool = False) -> tuple[list[str], list[object]]:
    """SQL conditions over the filter columns; ``vec``: only those ``calls_vec`` also has."""
    if filters is None:
        return [], []
    clauses: list[str] = []
    params: list[object] = []
    if filters.campaign_id is not None:
        clauses.append("campaign_id = ?")
        params.append(filters.campaign_id)
    if filters.outcomes:
        clauses.append(f"outcome IN ({', '.join('?' for _ in filters.outcomes)})")
        params.extend(o.value for o in filters.outcomes)
    if filters.direction is not None:
        clauses.append("direction = ?")
        params.append(filters.direction.value)
    if filters.started_from is not None:
        clauses.append("started_at >= ?")
        params.append(_epoch_ms(filters.started_from))
    if filters.started_to is not None:
        clauses.append("started_at < ?")
        params.append(_epoch_ms(filters.started_to))
    if filters.sentiment is not None:
        clauses.append("sentiment = ?")
        params.append(filters.sentiment.value)
    if filters.disposition is not None:
        clauses.append("disposition = ?")
        params.append(filters.disposition)
    if filters.follow_up_needed is not None:
        clauses.append("follow_up_needed = ?")
        params.append(int(filters.follow_up_needed))
    if filters.analysis_status is not None:
        clauses.append("analysis_status = ?")
        params.append(filters.analysis_status.value)
    if filters.status is not None:
        clauses.append("status = ?")
        params.append(filters.status.value)
    if not vec:
        more, more_params = _calls_only_where(filters)
        clauses += more
        params += more_params
    return clauses, params


class SqliteCallIndex(SqlPages, SqlUnindexed):
    """``CallIndex`` over one SQLite file; safe to share between threads of one process."""

    _mark = "?"

    def _stored_generation_sql(self) -> str:
        return "json_extract(c.record, '$.source_generation')"

    def _transaction(self):
        return self._conn

    def _unindexed_params(self, row: UnindexedCall) -> tuple:
        return (row.call_id, row.day.isoformat(), row.state.value, row.reason, _epoch_ms(row.since), row.generation)

    def _unindexed_row(self, stored: tuple) -> UnindexedCall:
        call_id, day, state, reason, since, generation = stored
        return UnindexedCall(
            call_id=call_id,
            day=date.fromisoformat(day),
            state=UnindexedState(state),
            reason=reason,
            since=datetime.fromtimestamp(since / 1000, tz=UTC),
            generation=generation,
        )

    def _where_clauses(self, filters: CallFilter | None) -> tuple[list[str], list[object]]:
        return _where(filters)

    def _order_by(self, sort: SortField, descending: bool) -> str:
        direction = "DESC" if descending else "ASC"
        # Unknown latency / sentiment (NULL) sorts last either way, as in PostgreSQL.
        return f"{_SORT_COLUMNS[SortField(sort)]} {direction} NULLS LAST, id {direction}"

    def _record(self, stored: str) -> CallRecord:
        return CallRecord.model_validate_json(stored)

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
            self._conn.execute(CHANGES_SCHEMA)
            # bm25 weights: transcript, summary, intent, tags (tags never score).
            self._conn.execute("INSERT INTO calls_fts (calls_fts, rank) VALUES ('rank', 'bm25(1.0, 2.0, 1.5, 0.0)')")
            self._add_columns()
            self._conn.execute(_ADDED_INDEXES)
        # Planner statistics for the indexes above (cheap: SQLite only analyses what needs it).
        self._conn.execute("PRAGMA optimize=0x10002")
        # Vector search scans this in-process copy of the binary codes (callindex/code_cache.py).
        self._codes = BinaryCodeCache()

    def _add_columns(self) -> None:
        """Files written before these columns existed get them, filled from each row's record JSON."""
        have = {row[1] for row in self._conn.execute("PRAGMA table_info(calls)")}
        missing = [c for c in _ADDED_COLUMNS if c[0] not in have]
        for name, sql_type, _ in missing:
            self._conn.execute(f"ALTER TABLE calls ADD COLUMN {name} {sql_type}")
        if missing:
            sets = ", ".join(f"{name} = {backfill}" for name, _, backfill in missing)
            self._conn.execute(f"UPDATE calls SET {sets}")

    # -- writes ---------------------------------------------------------------------------

    def upsert(self, record: CallRecord, embedding: Sequence[float]) -> None:
        self.upsert_many([(record, embedding)])

    def upsert_many(self, items: Iterable[tuple[CallRecord, Sequence[float]]]) -> int:
        """Upsert calls in one transaction: all of them land, or none do."""
        n = 0
        with self._lock:
            with self._conn:
                for record, embedding in items:
                    self._upsert_one(record, embedding)
                    n += 1
                prune_changes(self._conn)
            self._codes.mark_stale()
        return n

    def _upsert_one(self, record: CallRecord, embedding: Sequence[float]) -> None:
        check_embedding(embedding)
        vec = np.asarray(embedding, dtype=np.float32)
        vec_blob = vec.tobytes()
        cols = _filter_values(record)
        row = self._conn.execute(
            "SELECT id, json_extract(record, '$.source_generation') FROM calls WHERE call_id = ?", (record.call_id,)
        ).fetchone()
        # Indexed now: no longer among the calls not indexed yet (an older generation's row).
        self._conn.execute(self._clear_unindexed_sql(), (record.call_id, record.source_generation or 0))
        if row is not None and (row[1] or 0) > (record.source_generation or 0):
            return  # a run still holding an older generation of the report never replaces a newer one
        names = ", ".join(cols)
        marks = ", ".join("?" for _ in cols)
        values = list(cols.values())
        calls_cols = {**cols, **_calls_only_values(record), "duration_s": record.duration_s}
        calls_cols |= {"record": record.model_dump_json(), "embedding": vec_blob}
        if row is None:
            self._conn.execute(
                f"INSERT INTO calls (call_id, {', '.join(calls_cols)}) VALUES (?, {', '.join('?' for _ in calls_cols)})",
                (record.call_id, *calls_cols.values()),
            )
            rowid = self._conn.last_insert_rowid()
        else:
            rowid = row[0]
            sets = ", ".join(f"{c} = ?" for c in calls_cols)
            self._conn.execute(f"UPDATE calls SET {sets} WHERE id = ?", (*calls_cols.values(), rowid))
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
        log_change(self._conn, rowid)

    def delete(self, call_id: str) -> bool:
        with self._lock:
            with self._conn:
                row = self._conn.execute("SELECT id FROM calls WHERE call_id = ?", (call_id,)).fetchone()
                if row is None:
                    return False
                for sql in (
                    "DELETE FROM calls_fts WHERE rowid = ?",
                    "DELETE FROM calls_vec WHERE id = ?",
                    "DELETE FROM calls WHERE id = ?",
                ):
                    self._conn.execute(sql, (row[0],))
                log_change(self._conn, row[0])
            self._codes.mark_stale()
        return True

    # -- reads ----------------------------------------------------------------------------

    def get(self, call_id: str) -> CallRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT record FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        return CallRecord.model_validate_json(row[0]) if row else None

    def get_embedding(self, call_id: str) -> list[float] | None:
        with self._lock:
            row = self._conn.execute("SELECT embedding FROM calls WHERE call_id = ?", (call_id,)).fetchone()
        return np.frombuffer(row[0], dtype=np.float32).tolist() if row else None

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
        where = "".join(f" AND {c}" for c in clauses)
        # One read transaction: the code cache is brought up to this snapshot, and the candidates'
        # rows are re-read (with every filter) from the same snapshot, so a call deleted or
        # changed by the pipeline since the cache was built is never returned stale.
        with self._lock, self._conn:
            self._codes.refresh(self._conn)
            code = self._conn.execute("SELECT vec_quantize_binary(?)", (query.tobytes(),)).fetchone()[0]
            if _calls_only_where(filters)[0]:
                rows = self._rows_for_calls_only_filters(filters, code)
            else:
                ids = self._codes.nearest(code, filters, k, take_all_below=EXACT_RERANK_MAX)
                rows = self._rows_by_id(ids, where, params)
            if not rows:
                return []
            # Exact cosine over the binary scan's candidates restores float precision.
            matrix = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), -1)
            norms = np.linalg.norm(matrix, axis=1) * (np.linalg.norm(query) or 1.0)
            sims = matrix @ query / np.where(norms == 0, 1.0, norms)
            best = np.argsort(-sims, kind="stable")[:limit]
            best_ids = [rows[i][0] for i in best]
            records = dict(
                self._conn.execute(
                    f"SELECT id, record FROM calls WHERE id IN ({', '.join('?' for _ in best_ids)})", best_ids
                ).fetchall()
            )
        return [
            SearchHit(record=CallRecord.model_validate_json(records[rows[i][0]]), score=float(sims[i])) for i in best
        ]

    def _rows_by_id(self, ids: list[int], where: str, params: list[object]) -> list[tuple[int, bytes]]:
        """(id, embedding) of those ``ids`` whose current row exists and passes ``where``."""
        if not ids:
            return []
        marks = ", ".join("?" for _ in ids)
        return self._conn.execute(
            f"SELECT id, embedding FROM calls WHERE id IN ({marks}){where} ORDER BY id", (*ids, *params)
        ).fetchall()

    def _rows_for_calls_only_filters(self, filters: CallFilter, code: bytes) -> list[tuple[int, bytes]]:
        """(id, embedding) candidates when some filters are ``calls``-only (persona, ranges, contact).

        A small matching set is ranked exactly (every row); a large one takes the binary scan's
        widest candidate list over the filters the code cache has, then the rest filter it.
        """
        clauses, all_params = _where(filters)
        where = " AND ".join(clauses)
        n = self._conn.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM calls WHERE {where} LIMIT ?)", (*all_params, EXACT_SCAN_MAX + 1)
        ).fetchone()[0]
        if n <= EXACT_SCAN_MAX:
            return self._conn.execute(f"SELECT id, embedding FROM calls WHERE {where}", all_params).fetchall()
        ids = self._codes.nearest(code, filters, _VEC_MAX_K)
        return self._rows_by_id(ids, f" AND {where}", all_params)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> SqliteCallIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
