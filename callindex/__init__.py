"""The call index: the searchable store of processed calls (``CallRecord`` rows).

Engines: ``SqliteCallIndex`` (embedded default: SQLite + FTS5 + sqlite-vec) and
``PostgresCallIndex`` (production: PostgreSQL + pgvector). Open either with ``open_call_index``.
It owns its query vocabulary (``CallQuery``: filters and sorts in an analyst's words) and its
aggregates (``percentile``): readers use these, never a copy. Beside the indexed calls it keeps
the calls not indexed yet (``UnindexedCall``: pending, or refused with the reason).
"""

from callindex.aggregates import percentile
from callindex.api import (
    EMBEDDING_DIM,
    CallFilter,
    CallIndex,
    CallIndexError,
    CallPage,
    SearchHit,
    SortField,
    open_call_index,
)
from callindex.unindexed import UnindexedCall, UnindexedPage, UnindexedState
from callindex.vocabulary import CallQuery, SortOrder

__all__ = [
    "EMBEDDING_DIM",
    "CallFilter",
    "CallIndex",
    "CallIndexError",
    "CallPage",
    "CallQuery",
    "SearchHit",
    "SortField",
    "SortOrder",
    "UnindexedCall",
    "UnindexedPage",
    "UnindexedState",
    "open_call_index",
    "percentile",
]
