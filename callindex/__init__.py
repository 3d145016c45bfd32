"""The call index: the searchable store of processed calls (``CallRecord`` rows).

Engines: ``SqliteCallIndex`` (embedded default: SQLite + FTS5 + sqlite-vec) and
``PostgresCallIndex`` (production: PostgreSQL + pgvector). Open either with ``open_call_index``.
"""

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

__all__ = [
    "EMBEDDING_DIM",
    "CallFilter",
    "CallIndex",
    "CallIndexError",
    "CallPage",
    "SearchHit",
    "SortField",
    "open_call_index",
]
