"""The production call index: PostgreSQL (Cloud SQL) with pgvector.

Full text: a weighted ``tsvector`` (summary > intent > transcript) under a GIN index.
Vectors: ``vector(384)`` under an HNSW cosine index; filtered searches use pgvector's
iterative index scan (0.8+) so a selective filter still returns ``limit`` rows.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence

import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg.types.json import Jsonb

from callcenter.record import CallRecord
from callindex.api import (
    EMBEDDING_DIM,
    SENTIMENT_RANK,
    CallFilter,
    CallIndexError,
    SearchHit,
    SortField,
    check_embedding,
    check_page,
)
from callindex.query import pg_tsquery_text
from callindex.sql_pages import SqlPages
from callindex.unindexed import SqlUnindexed, UnindexedCall, UnindexedState

_SCHEMA = f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE IF NOT EXISTS calls (
    call_id text PRIMARY KEY,
    campaign_id text,
    direction text NOT NULL,
    outcome text NOT NULL,
    started_at timestamptz NOT NULL,
    duration_s double precision NOT NULL,
    sentiment text,
    disposition text,
    follow_up_needed boolean,
    analysis_status text NOT NULL,
    status text NOT NULL,
    record jsonb NOT NULL,
    search_text text NOT NULL,
    search tsvector NOT NULL,
    embedding vector({EMBEDDING_DIM}) NOT NULL,
    indexed_at timestamptz NOT NULL DEFAULT now()
);
-- Added later (older databases get them, filled from record, in _add_columns); NULL when unknown.
ALTER TABLE calls ADD COLUMN IF NOT EXISTS persona_key text;  -- persona, case-folded
ALTER TABLE calls ADD COLUMN IF NOT EXISTS contact_id text;
ALTER TABLE calls ADD COLUMN IF NOT EXISTS latency_p50_ms double precision;  -- voice-to-voice p50
ALTER TABLE calls ADD COLUMN IF NOT EXISTS sentiment_rank smallint;  -- SENTIMENT_RANK
CREATE INDEX IF NOT EXISTS calls_search ON calls USING gin (search);
CREATE INDEX IF NOT EXISTS calls_embedding ON calls USING hnsw (embedding vector_cosine_ops);
CREATE INDEX IF NOT EXISTS calls_started ON calls (started_at);
CREATE INDEX IF NOT EXISTS calls_campaign_started ON calls (campaign_id, started_at);
CREATE INDEX IF NOT EXISTS calls_outcome_started ON calls (outcome, started_at);
CREATE INDEX IF NOT EXISTS calls_campaign_outcome_started ON calls (campaign_id, outcome, started_at);
CREATE INDEX IF NOT EXISTS calls_duration ON calls (duration_s);
CREATE INDEX IF NOT EXISTS calls_persona_started ON calls (persona_key, started_at);
CREATE INDEX IF NOT EXISTS calls_contact_started ON calls (contact_id, started_at);
CREATE INDEX IF NOT EXISTS calls_latency ON calls (latency_p50_ms);
CREATE INDEX IF NOT EXISTS calls_sentiment_rank ON calls (sentiment_rank);
-- Nullable sort keys sort NULLS LAST both ways; a plain index only serves the ascending one.
CREATE INDEX IF NOT EXISTS calls_latency_desc ON calls (latency_p50_ms DESC NULLS LAST);
CREATE INDEX IF NOT EXISTS calls_sentiment_rank_desc ON calls (sentiment_rank DESC NULLS LAST);
CREATE INDEX IF NOT EXISTS calls_campaign_desc ON calls (campaign_id DESC NULLS LAST);
-- Calls not in the index yet (callindex/unindexed.py): ids, day, state and reason only.
CREATE TABLE IF NOT EXISTS unindexed_calls (
    call_id text PRIMARY KEY,
    day date NOT NULL,
    state text NOT NULL,  -- pending | unreadable | failed
    reason text NOT NULL,
    since timestamptz NOT NULL,
    generation bigint  -- the session report's generation, when known
);
CREATE INDEX IF NOT EXISTS unindexed_since ON unindexed_calls (since);
"""

# Rows written before the added columns existed: fill them from the stored record.
_BACKFILL = (
    "UPDATE calls SET persona_key = lower(record->>'persona'), contact_id = record->>'contact_id', "
    "latency_p50_ms = (record->'latency'->>'voice_to_voice_p50_ms')::double precision, "
    "sentiment_rank = CASE sentiment "
    + " ".join(f"WHEN '{s.value}' THEN {r}" for s, r in SENTIMENT_RANK.items())
    + " END WHERE persona_key IS NULL AND contact_id IS NULL AND latency_p50_ms IS NULL AND sentiment_rank IS NULL"
)

_UPSERT = """
INSERT INTO calls (call_id, campaign_id, direction, outcome, started_at, duration_s, sentiment, disposition,
                   follow_up_needed, analysis_status, status, record, search_text, search, embedding, indexed_at,
                   persona_key, contact_id, latency_p50_ms, sentiment_rank)
VALUES (%(call_id)s, %(campaign_id)s, %(direction)s, %(outcome)s, %(started_at)s, %(duration_s)s, %(sentiment)s,
        %(disposition)s, %(follow_up_needed)s, %(analysis_status)s, %(status)s, %(record)s, %(search_text)s,
        setweight(to_tsvector('english', %(summary)s), 'A')
          || setweight(to_tsvector('english', %(intent)s), 'B')
          || setweight(to_tsvector('english', %(transcript)s), 'C'),
        %(embedding)s, now(), %(persona_key)s, %(contact_id)s, %(latency_p50_ms)s, %(sentiment_rank)s)
ON CONFLICT (call_id) DO UPDATE SET
    campaign_id = EXCLUDED.campaign_id, direction = EXCLUDED.direction, outcome = EXCLUDED.outcome,
    started_at = EXCLUDED.started_at, duration_s = EXCLUDED.duration_s, sentiment = EXCLUDED.sentiment,
    disposition = EXCLUDED.disposition, follow_up_needed = EXCLUDED.follow_up_needed,
    analysis_status = EXCLUDED.analysis_status, status = EXCLUDED.status, record = EXCLUDED.record,
    search_text = EXCLUDED.search_text, search = EXCLUDED.search, embedding = EXCLUDED.embedding,
    indexed_at = now(), persona_key = EXCLUDED.persona_key, contact_id = EXCLUDED.contact_id,
    latency_p50_ms = EXCLUDED.latency_p50_ms, sentiment_rank = EXCLUDED.sentiment_rank
-- A run still holding an older generation of the report (or a retry of it) never replaces a newer one.
WHERE COALESCE((calls.record->>'source_generation')::bigint, 0)
   <= COALESCE((EXCLUDED.record->>'source_generation')::bigint, 0)
"""

# Sort keys that can be NULL get NULLS LAST; the others must not, or no index serves DESC.
_NULLABLE_SORTS = {SortField.CAMPAIGN, SortField.LATENCY, SortField.SENTIMENT}

_SORT_COLUMNS = {
    SortField.STARTED_AT: "started_at",
    SortField.DURATION: "duration_s",
    SortField.CAMPAIGN: "campaign_id",
    SortField.OUTCOME: "outcome",
    SortField.LATENCY: "latency_p50_ms",
    SortField.SENTIMENT: "sentiment_rank",
}


def _params(record: CallRecord, embedding: Sequence[float]) -> dict[str, object]:
    check_embedding(embedding)
    analysis = record.analysis
    summary = analysis.summary if analysis else ""
    intent = analysis.customer_intent if analysis else ""
    transcript = record.transcript_text
    return {
        "call_id": record.call_id,
        "campaign_id": record.campaign_id,
        "direction": record.direction.value,
        "outcome": record.outcome.value,
        "started_at": record.started_at,
        "duration_s": record.duration_s,
        "sentiment": record.sentiment.value if record.sentiment else None,
        "disposition": record.disposition,
        "follow_up_needed": record.follow_up_needed,
        "analysis_status": record.analysis_status.value,
        "status": record.status.value,
        "record": Jsonb(record.model_dump(mode="json")),
        "search_text": f"{summary}\n{transcript}",
        "summary": summary,
        "intent": intent,
        "transcript": transcript,
        "embedding": np.asarray(embedding, dtype=np.float32),
        "persona_key": record.persona.casefold() if record.persona is not None else None,
        "contact_id": record.contact_id,
        "latency_p50_ms": record.latency.voice_to_voice_p50_ms,
        "sentiment_rank": SENTIMENT_RANK[record.sentiment] if record.sentiment else None,
    }


def _where(filters: CallFilter | None) -> tuple[list[str], list[object]]:
    if filters is None:
        return [], []
    clauses: list[str] = []
    params: list[object] = []
    simple = {
        "campaign_id": filters.campaign_id,
        "direction": filters.direction.value if filters.direction else None,
        "sentiment": filters.sentiment.value if filters.sentiment else None,
        "disposition": filters.disposition,
        "follow_up_needed": filters.follow_up_needed,
        "analysis_status": filters.analysis_status.value if filters.analysis_status else None,
        "status": filters.status.value if filters.status else None,
        "persona_key": filters.persona.casefold() if filters.persona is not None else None,
        "contact_id": filters.contact_id,
    }
    for column, value in simple.items():
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    if filters.outcomes:
        clauses.append("outcome = ANY(%s)")
        params.append([o.value for o in filters.outcomes])
    if filters.started_from is not None:
        clauses.append("started_at >= %s")
        params.append(filters.started_from)
    if filters.started_to is not None:
        clauses.append("started_at < %s")
        params.append(filters.started_to)
    for condition, value in (
        ("duration_s >= %s", filters.min_duration_s),
        ("duration_s <= %s", filters.max_duration_s),
        ("latency_p50_ms >= %s", filters.min_latency_p50_ms),
        ("latency_p50_ms <= %s", filters.max_latency_p50_ms),
    ):
        if value is not None:
            clauses.append(condition)
            params.append(value)
    return clauses, params


def _order_by(sort: SortField, descending: bool) -> str:
    direction = "DESC" if descending else "ASC"
    nulls = " NULLS LAST" if SortField(sort) in _NULLABLE_SORTS else ""
    return f"{_SORT_COLUMNS[SortField(sort)]} {direction}{nulls}, call_id {direction}"


class PostgresCallIndex(SqlPages, SqlUnindexed):
    """``CallIndex`` over PostgreSQL + pgvector; one connection, serialised by a lock."""

    _mark = "%s"

    def _stored_generation_sql(self) -> str:
        return "(c.record->>'source_generation')::bigint"

    def _transaction(self):
        return self._conn.transaction()

    def _unindexed_params(self, row: UnindexedCall) -> tuple:
        return (row.call_id, row.day, row.state.value, row.reason, row.since, row.generation)

    def _unindexed_row(self, stored: tuple) -> UnindexedCall:
        call_id, day, state, reason, since, generation = stored
        return UnindexedCall(
            call_id=call_id, day=day, state=UnindexedState(state), reason=reason, since=since, generation=generation
        )

    def _unindexed_rows(self, sql: str, params: list) -> list[tuple]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except psycopg.errors.UndefinedTable:
            # A reader (the browser) on a database the pipeline has not migrated yet: none recorded.
            return []

    def _where_clauses(self, filters: CallFilter | None) -> tuple[list[str], list[object]]:
        return _where(filters)

    def _order_by(self, sort: SortField, descending: bool) -> str:
        return _order_by(sort, descending)

    def _record(self, stored: dict) -> CallRecord:
        return CallRecord.model_validate(stored)

    def __init__(self, dsn: str, *, ef_search: int = 100, read_only: bool = False) -> None:
        """``read_only``: a reader such as the call browser, connected as a role that may only
        SELECT (manifests/bootstrap/postgres.yaml); it neither creates nor migrates the schema
        (the writer, the post-call pipeline, does) and its session refuses every write."""
        self.ef_search = ef_search
        self._lock = threading.RLock()
        try:
            self._conn = psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            # The DSN may carry a password: name the problem, never the DSN.
            raise CallIndexError(
                f"cannot connect to the call index database (CALLCENTER_CALL_INDEX_DSN): {exc}"
            ) from None
        if read_only:
            self._conn.execute("SET default_transaction_read_only = on")
            register_vector(self._conn)
            return
        with self._conn.transaction():
            had_columns = self._conn.execute(
                "SELECT count(*) FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'calls' AND column_name = 'persona_key'"
            ).fetchone()[0]
            self._conn.execute(_SCHEMA)
            if not had_columns:
                self._conn.execute(_BACKFILL)
        register_vector(self._conn)

    def upsert(self, record: CallRecord, embedding: Sequence[float]) -> None:
        self.upsert_many([(record, embedding)])

    def upsert_many(self, items: Iterable[tuple[CallRecord, Sequence[float]]]) -> int:
        rows = [_params(r, e) for r, e in items]
        with self._lock, self._conn.transaction(), self._conn.cursor() as cur:
            cur.executemany(_UPSERT, rows)
            # Indexed now: no longer among the calls not indexed yet (an older generation's row).
            cur.executemany(
                self._clear_unindexed_sql(),
                [(r["call_id"], r["record"].obj.get("source_generation") or 0) for r in rows],
            )
        return len(rows)

    def delete(self, call_id: str) -> bool:
        with self._lock:
            cur = self._conn.execute("DELETE FROM calls WHERE call_id = %s", (call_id,))
            return cur.rowcount > 0

    def get(self, call_id: str) -> CallRecord | None:
        with self._lock:
            row = self._conn.execute("SELECT record FROM calls WHERE call_id = %s", (call_id,)).fetchone()
        return CallRecord.model_validate(row[0]) if row else None

    def get_embedding(self, call_id: str) -> list[float] | None:
        with self._lock:
            row = self._conn.execute("SELECT embedding FROM calls WHERE call_id = %s", (call_id,)).fetchone()
        return row[0].to_numpy().astype(np.float32).tolist() if row else None

    def search_text(self, query: str, filters: CallFilter | None = None, *, limit: int = 20) -> list[SearchHit]:
        check_page(limit, 0)
        text = pg_tsquery_text(query)
        clauses, params = _where(filters)
        extra = "".join(f" AND {c}" for c in clauses)
        sql = (
            "WITH q AS (SELECT websearch_to_tsquery('english', %s) AS q), "
            "top AS (SELECT record, search_text, ts_rank(search, q.q) AS score FROM calls, q "
            f"WHERE search @@ q.q{extra} ORDER BY score DESC LIMIT %s) "
            "SELECT record, score, ts_headline('english', search_text, q.q, "
            "'StartSel=[, StopSel=], MaxFragments=1, MaxWords=24, MinWords=8') FROM top, q ORDER BY score DESC"
        )
        with self._lock:
            rows = self._conn.execute(sql, (text, *params, limit)).fetchall()
        return [SearchHit(record=CallRecord.model_validate(r), score=float(s), snippet=h) for r, s, h in rows]

    def search_vector(
        self, embedding: Sequence[float], filters: CallFilter | None = None, *, limit: int = 20
    ) -> list[SearchHit]:
        check_page(limit, 0)
        check_embedding(embedding)
        query = np.asarray(embedding, dtype=np.float32)
        clauses, params = _where(filters)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        with self._lock, self._conn.transaction():
            # Iterative scans keep walking the HNSW graph until ``limit`` rows pass the filters.
            self._conn.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
            self._conn.execute(f"SET LOCAL hnsw.ef_search = {int(self.ef_search)}")
            rows = self._conn.execute(
                f"SELECT record, 1 - (embedding <=> %s) AS similarity FROM calls {where} "
                "ORDER BY embedding <=> %s LIMIT %s",
                (query, *params, query, limit),
            ).fetchall()
        hits = [SearchHit(record=CallRecord.model_validate(r), score=float(s)) for r, s in rows]
        # relaxed_order may return near-ties slightly out of order.
        return sorted(hits, key=lambda h: -h.score)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __enter__(self) -> PostgresCallIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
