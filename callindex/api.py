"""The call index's read/write API: one protocol, two engines (embedded SQLite, PostgreSQL+pgvector).

The analyst browser depends only on this package (this module, the query vocabulary in
``callindex.vocabulary`` and the aggregates in ``callindex.aggregates``) and on
``callcenter.record.CallRecord``.
Stable contract: add optional parameters and fields only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.record import AnalysisStatus, CallRecord, RecordStatus, Sentiment
from callindex.unindexed import UnindexedCall, UnindexedPage, UnindexedState

EMBEDDING_DIM = 384  # all-MiniLM-L6-v2
MAX_PAGE_SIZE = 500


class CallFilter(BaseModel):
    """Conjunction of optional filters; None means no constraint. Time bounds are [from, to)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    campaign_id: str | None = None
    outcomes: tuple[CallOutcome, ...] | None = None
    direction: CallDirection | None = None
    started_from: datetime | None = None
    started_to: datetime | None = None
    sentiment: Sentiment | None = None
    disposition: str | None = None
    follow_up_needed: bool | None = None
    analysis_status: AnalysisStatus | None = None
    status: RecordStatus | None = None
    persona: str | None = Field(None, description="the agent persona, matched case-insensitively")
    contact_id: str | None = Field(None, description="the dialled contact (all attempts of one contact)")
    min_duration_s: float | None = Field(None, ge=0, description="duration_s >= this")
    max_duration_s: float | None = Field(None, ge=0, description="duration_s <= this")
    min_latency_p50_ms: float | None = Field(
        None, ge=0, description="voice-to-voice p50 >= this; calls without a measured turn never match"
    )
    max_latency_p50_ms: float | None = Field(None, ge=0, description="voice-to-voice p50 <= this (measured calls)")


class SortField(StrEnum):
    """The orders a list can take; the values are the analyst's words (the browser's ``sort=``)."""

    STARTED_AT = "started_at"
    DURATION = "duration"
    LATENCY = "latency"  # voice-to-voice p50; calls without a measurement sort last
    SENTIMENT = "sentiment"  # negative, mixed, neutral, positive (ascending); unanalysed calls sort last
    CAMPAIGN = "campaign"
    OUTCOME = "outcome"


# Sentiment as a sortable number: worst first when ascending.
SENTIMENT_RANK = {Sentiment.NEGATIVE: 1, Sentiment.MIXED: 2, Sentiment.NEUTRAL: 3, Sentiment.POSITIVE: 4}


class CallPage(BaseModel):
    items: list[CallRecord]
    total: int = Field(description="rows matching the filters, across all pages (at most count_limit: see total_exact)")
    total_exact: bool = Field(True, description="False when counting stopped at list_calls' count_limit")
    limit: int
    offset: int


class SearchHit(BaseModel):
    record: CallRecord
    score: float = Field(description="higher is better (text: -bm25 / ts_rank; vector: cosine similarity)")
    snippet: str | None = Field(None, description="matching text with [brackets] around hits (text search only)")


@runtime_checkable
class CallIndex(Protocol):
    """The searchable store of indexed calls."""

    def upsert(self, record: CallRecord, embedding: Sequence[float]) -> None:
        """Insert or replace one call atomically (re-processing replaces, never duplicates; a
        record from an older report generation than the stored one is ignored). Its row among
        the calls not indexed yet (``mark_unindexed``), if any, goes in the same transaction."""
        ...

    def upsert_many(self, items: Iterable[tuple[CallRecord, Sequence[float]]]) -> int:
        """Upsert a batch in one transaction: all of it lands, or none of it does."""
        ...

    def get(self, call_id: str) -> CallRecord | None: ...

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
        """One page in ``sort`` order. ``count_limit``: stop counting matches there (``total`` is then
        ``count_limit`` and ``total_exact`` False); 0 skips the count. Counting a large filtered set
        costs more than reading the page, so pages that only need "more than N" should cap it."""
        ...

    def search_text(self, query: str, filters: CallFilter | None = None, *, limit: int = 20) -> list[SearchHit]:
        """Full-text search over transcript, summary and intent; words are ANDed, "quoted phrases" kept."""
        ...

    def search_vector(
        self, embedding: Sequence[float], filters: CallFilter | None = None, *, limit: int = 20
    ) -> list[SearchHit]:
        """Nearest calls by cosine similarity to ``embedding`` (use ``callindex.embeddings`` for a query)."""
        ...

    def get_embedding(self, call_id: str) -> list[float] | None:
        """The stored embedding of one call (for "find similar" without re-embedding its text)."""
        ...

    def count(self, filters: CallFilter | None = None) -> int: ...

    # Calls not in the index yet (callindex/unindexed.py): written by post-call, read by the browser.
    def mark_unindexed(self, calls: Iterable[UnindexedCall]) -> int:
        """Record calls that are not indexed (pending, unreadable report, failed), in one
        transaction; indexing a call (``upsert``/``upsert_many``) clears its row."""
        ...

    def list_unindexed(self, state: UnindexedState | None = None, *, limit: int = 50, offset: int = 0) -> UnindexedPage:
        """Calls not indexed yet, the longest waiting first."""
        ...

    def count_unindexed(self) -> dict[UnindexedState, int]:
        """How many calls are not indexed yet, by state."""
        ...

    def delete(self, call_id: str) -> bool: ...

    def close(self) -> None: ...


class CallIndexError(RuntimeError):
    pass


def check_page(limit: int, offset: int) -> None:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE_SIZE}, got {limit}")
    if offset < 0:
        raise ValueError(f"offset must be >= 0, got {offset}")


def check_count_limit(count_limit: int | None) -> None:
    if count_limit is not None and count_limit < 0:
        raise ValueError(f"count_limit must be >= 0 or None (exact count), got {count_limit}")


def capped_total(counted: int, count_limit: int | None) -> tuple[int, bool]:
    """(total, exact) from a count that read at most ``count_limit + 1`` rows."""
    if count_limit is not None and counted > count_limit:
        return count_limit, False
    return counted, True


def check_embedding(embedding: Sequence[float]) -> None:
    if len(embedding) != EMBEDDING_DIM:
        raise ValueError(f"embedding must have {EMBEDDING_DIM} dimensions (all-MiniLM-L6-v2), got {len(embedding)}")


def open_call_index(url: str, *, read_only: bool = False) -> CallIndex:
    """Open an index by URL: ``sqlite:///abs/path/calls.db`` (or a bare path) or ``postgresql://...``.

    ``read_only`` (PostgreSQL): open it as a reader, with no schema creation or migration, for
    a role that may only SELECT. The embedded SQLite file is local and opened as it is."""
    if url.startswith(("postgresql://", "postgres://")):
        from callindex.postgres import PostgresCallIndex

        return PostgresCallIndex(url, read_only=read_only)
    path = url.removeprefix("sqlite://")
    if not path:
        raise ValueError("call index URL is empty: give sqlite:///path/to/calls.db or postgresql://user@host/db")
    from callindex.sqlite import SqliteCallIndex

    return SqliteCallIndex(path)
