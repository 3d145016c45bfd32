"""The ledger on SQLite (local): a file under CALLCENTER_DATA_DIR, one connection, WAL so the
UI can read while a tick writes, and every commit flushed before anyone is dialled."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestration.defs.dialing.ledger.store import DialStore


class SqliteDialStore(DialStore):
    """A file under CALLCENTER_DATA_DIR; WAL so the UI can read while a tick writes."""

    engine = "sqlite"

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False, timeout=30)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")  # an attempt row must survive a power cut before we dial
        self._lock = threading.RLock()
        self.migrate()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Cursor]:
        with self._lock:
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def close(self) -> None:
        self._conn.close()
