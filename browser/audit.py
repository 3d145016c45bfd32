"""The audit trail: every call page view, search and CSV export is logged (who, what, when, from where)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from browser.auth import Analyst

logger = logging.getLogger("browser.audit")


class CallViewAudit:
    """Writes one record per call page view, search and export to the ``browser.audit`` logger
    and, if set, a JSONL file."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def call_viewed(self, analyst: Analyst, call_id: str, client: str | None) -> dict:
        return self.record("call_viewed", analyst, client, call_id=call_id)

    def record(self, event: str, analyst: Analyst, client: str | None, **details: object) -> dict:
        entry = {
            "event": event,
            "at": datetime.now(UTC).isoformat(),
            "analyst": analyst.email,
            "via": analyst.via,
            "client": client,
            **details,
        }
        line = json.dumps(entry, sort_keys=True)
        logger.info(line)
        if self._path is not None:
            with self._lock, self._path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        return entry
