"""An in-process copy of the call index's binary codes, for vector search without a campaign.

sqlite-vec 0.1.x has no ANN index: a search scans every 48-byte binary code through its
virtual-table machinery (~90-100 ms for 1M calls). The same scan over a rowid-aligned numpy
array (XOR + popcount, ~48 MB for 1M calls) is several times faster, and the filter columns
``calls_vec`` holds are kept beside it as small integer arrays so filters become masks.

Freshness: the pipeline writes from another process. Every upsert/delete appends the call's
rowid to ``calls_changes`` in the same transaction; before each search the cache compares
``PRAGMA data_version`` (changes when another connection commits) and re-reads only the
changed rowids. Rows inserted by a writer that does not log changes (the bench's bulk loader)
are found by rowid above the cached maximum. If the log was pruned past the cache's
watermark, the cache reloads whole. The caller re-reads candidates from ``calls`` with the
full filter in the same read transaction, so a stale code can cost recall, never a wrong row.
"""

from __future__ import annotations

import apsw
import numpy as np

from callindex.api import CallFilter

WORDS = 6  # 384 bits as uint64 words
# calls_vec's filter columns mirrored here; text ones are dictionary-encoded to int32.
TEXT_COLUMNS = ("campaign_id", "direction", "outcome", "sentiment", "disposition", "analysis_status", "status")
INT_COLUMNS = ("started_at", "follow_up_needed")
_SELECT = f"id, embedding, {', '.join(TEXT_COLUMNS + INT_COLUMNS)}"
# Change-log entries the writer keeps; a cache further behind than this reloads whole.
CHANGES_KEPT = 100_000

CHANGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls_changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id INTEGER NOT NULL                 -- calls.id upserted or deleted
);
"""


def log_change(conn: apsw.Connection, rowid: int) -> None:
    """Record a written/deleted rowid (call inside the writing transaction)."""
    conn.execute("INSERT INTO calls_changes (id) VALUES (?)", (rowid,))


def prune_changes(conn: apsw.Connection) -> None:
    """Keep the last CHANGES_KEPT entries (never all: readers detect pruning by a seq gap)."""
    conn.execute("DELETE FROM calls_changes WHERE seq <= (SELECT max(seq) FROM calls_changes) - ?", (CHANGES_KEPT,))


def _words(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, dtype=np.uint64)


class BinaryCodeCache:
    """Rowid-sorted ids, binary codes and filter columns of every row in ``calls_vec``."""

    def __init__(self) -> None:
        self.loaded = False
        self.data_version: int | None = None
        self.seq = 0
        self.max_id = 0
        self._vocab: dict[str, dict[str, int]] = {c: {} for c in TEXT_COLUMNS}
        self._set_arrays([])

    # -- loading --------------------------------------------------------------------------

    def _encode(self, column: str, value: str) -> int:
        vocab = self._vocab[column]
        code = vocab.get(value)
        if code is None:
            code = vocab[value] = len(vocab)
        return code

    def _arrays(self, rows: list[tuple], codes: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Arrays from ``(id, embedding, *columns)`` rows (or ``(id, *columns)`` with ``codes`` given).

        Codes are stored word-major, shape (WORDS, n): each word's XOR + popcount is one
        contiguous pass.
        """
        n = len(rows)
        first = 1 if codes is not None else 2
        if codes is None:
            codes = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.uint64).reshape(n, WORDS)
        out = {
            "ids": np.fromiter((r[0] for r in rows), dtype=np.int64, count=n),
            "codes": np.ascontiguousarray(codes.T),
            "alive": np.ones(n, dtype=bool),
        }
        for j, col in enumerate(TEXT_COLUMNS, start=first):
            out[col] = np.fromiter((self._encode(col, r[j]) for r in rows), dtype=np.int32, count=n)
        for j, col in enumerate(INT_COLUMNS, start=first + len(TEXT_COLUMNS)):
            out[col] = np.fromiter((r[j] for r in rows), dtype=np.int64, count=n)
        return out

    def _set_arrays(self, rows: list[tuple], codes: np.ndarray | None = None) -> None:
        self._store(self._arrays(rows, codes))

    def _store(self, arrays: dict[str, np.ndarray]) -> None:
        ids = arrays["ids"]
        if len(ids) > 1 and not (ids[1:] > ids[:-1]).all():
            order = np.argsort(ids, kind="stable")
            arrays = {name: arr[..., order] for name, arr in arrays.items()}
        for name, arr in arrays.items():
            setattr(self, "_" + name, np.ascontiguousarray(arr))
        self.max_id = int(self._ids[-1]) if len(self._ids) else 0
        self._all_alive = bool(self._alive.all())

    def refresh(self, conn: apsw.Connection) -> None:
        """Bring the cache up to the connection's current read snapshot (call inside a transaction)."""
        version = conn.execute("PRAGMA data_version").fetchone()[0]
        if self.loaded and version == self.data_version:
            return
        if not self.loaded:
            self._full_load(conn)
        else:
            changes = conn.execute(
                "SELECT seq, id FROM calls_changes WHERE seq > ? ORDER BY seq", (self.seq,)
            ).fetchall()
            if changes and changes[0][0] != self.seq + 1:  # pruned past our watermark
                self._full_load(conn)
            else:
                if changes:
                    self.seq = changes[-1][0]
                changed = {c[1] for c in changes}
                changed.update(r[0] for r in conn.execute("SELECT id FROM calls WHERE id > ?", (self.max_id,)))
                if changed:
                    self._apply(conn, sorted(changed))
        self.data_version = version
        self.loaded = True

    def mark_stale(self) -> None:
        """This process wrote (``data_version`` only moves for other connections' commits)."""
        self.data_version = None

    def _full_load(self, conn: apsw.Connection) -> None:
        # Codes from calls_vec, filter columns from calls: reading vec0's metadata columns row
        # by row is ~8x slower (1M calls: ~1.3 s + ~3 s this way, ~11 s through vec0).
        self.seq = conn.execute("SELECT coalesce(max(seq), 0) FROM calls_changes").fetchone()[0]
        coded = conn.execute("SELECT id, embedding FROM calls_vec").fetchall()
        code_ids = np.fromiter((r[0] for r in coded), dtype=np.int64, count=len(coded))
        codes = np.frombuffer(b"".join(r[1] for r in coded), dtype=np.uint64).reshape(len(coded), WORDS)
        del coded
        order = np.argsort(code_ids)
        code_ids, codes = code_ids[order], codes[order]
        rows = conn.execute(f"SELECT id, {', '.join(TEXT_COLUMNS + INT_COLUMNS)} FROM calls ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        pos = np.minimum(np.searchsorted(code_ids, ids), max(len(code_ids) - 1, 0))
        both = code_ids[pos] == ids if len(code_ids) else np.zeros(len(ids), dtype=bool)
        if not both.all():  # same snapshot, same writes: only a foreign writer could split them
            rows = [r for r, keep in zip(rows, both, strict=True) if keep]
        self._set_arrays(rows, codes[pos[both]])

    def _apply(self, conn: apsw.Connection, ids: list[int]) -> None:
        # Point lookups: vec0 answers ``id = ?`` by rowid, but ``id IN (...)`` by a scan.
        current = [conn.execute(f"SELECT {_SELECT} FROM calls_vec WHERE id = ?", (i,)).fetchone() for i in ids]
        wanted = np.asarray(ids, dtype=np.int64)
        exists = np.array([r is not None for r in current], dtype=bool)
        pos = np.searchsorted(self._ids, wanted)
        known = pos < len(self._ids)
        known[known] = self._ids[pos[known]] == wanted[known]
        gone = pos[known & ~exists]
        if len(gone):  # deleted since loaded
            self._alive[gone] = False
            self._all_alive = False
        if not exists.any():
            return
        fresh = self._arrays([r for r in current if r is not None])
        known_live, pos_live = known[exists], pos[exists]
        for name, arr in fresh.items():  # replaced in place
            getattr(self, "_" + name)[..., pos_live[known_live]] = arr[..., known_live]
        if not known_live.all():  # inserted since loaded
            extra = {name: arr[..., ~known_live] for name, arr in fresh.items()}
            self._store(
                {name: np.concatenate([getattr(self, "_" + name), arr], axis=-1) for name, arr in extra.items()}
            )

    # -- search ---------------------------------------------------------------------------

    def mask(self, filters: CallFilter | None) -> np.ndarray | None:
        """Rows passing the filters ``calls_vec`` holds (None: all live rows); None filters pass."""
        conditions = [] if self._all_alive else [self._alive]
        if filters is not None:

            def text(column: str, values: list[str]) -> None:
                codes = [self._vocab[column].get(v, -1) for v in values]
                column_codes = getattr(self, "_" + column)
                if len(codes) == 1:
                    conditions.append(column_codes == codes[0])
                else:
                    conditions.append(np.isin(column_codes, codes))

            if filters.campaign_id is not None:
                text("campaign_id", [filters.campaign_id])
            if filters.outcomes:
                text("outcome", [o.value for o in filters.outcomes])
            if filters.direction is not None:
                text("direction", [filters.direction.value])
            if filters.sentiment is not None:
                text("sentiment", [filters.sentiment.value])
            if filters.disposition is not None:
                text("disposition", [filters.disposition])
            if filters.analysis_status is not None:
                text("analysis_status", [filters.analysis_status.value])
            if filters.status is not None:
                text("status", [filters.status.value])
            if filters.follow_up_needed is not None:
                conditions.append(self._follow_up_needed == int(filters.follow_up_needed))
            if filters.started_from is not None:
                conditions.append(self._started_at >= int(filters.started_from.timestamp() * 1000))
            if filters.started_to is not None:
                conditions.append(self._started_at < int(filters.started_to.timestamp() * 1000))
        if not conditions:
            return None
        return np.logical_and.reduce(conditions) if len(conditions) > 1 else conditions[0]

    def nearest(self, query_code: bytes, filters: CallFilter | None, k: int, *, take_all_below: int = 0) -> list[int]:
        """Rowids of the ``k`` smallest Hamming distances among rows passing the filters.

        When at most ``max(k, take_all_below)`` rows pass, all of them (ranking is then exact).
        """
        k_all = max(k, take_all_below)
        mask = self.mask(filters)
        if mask is None:
            ids, codes = self._ids, self._codes
        else:
            selected = np.flatnonzero(mask)
            if len(selected) <= k_all:
                return self._ids[selected].tolist()
            ids, codes = self._ids[selected], self._codes[:, selected]
        if len(ids) <= k_all:
            return ids.tolist()
        q = _words(query_code)
        dist = np.zeros(len(ids), dtype=np.uint16)
        for w in range(WORDS):  # word by word: no (n, 6) temporaries
            dist += np.bitwise_count(codes[w] ^ q[w])
        # Distances are 0..384: a histogram finds the k-th distance faster than argpartition,
        # and ties at that distance go to the lowest rowids (deterministic).
        cutoff = int(np.searchsorted(np.cumsum(np.bincount(dist, minlength=WORDS * 64 + 1)), k))
        below = np.flatnonzero(dist < cutoff)
        ties = np.flatnonzero(dist == cutoff)[: k - len(below)]
        return ids[np.concatenate([below, ties])].tolist()
