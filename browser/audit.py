"""The audit trail: every call page view is logged (who, which call, when, from where)."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

from browser.auth import Analyst

logger = logging.getLogger("browser.audit")


class CallViewAudit:
    """Writes one record per call page view to the ``browser.audit`` logger and, if set, a JSONL file."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._lock = threading.Lock()
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def call_viewed(self, analyst: Analyst, call_id: str, client: str | None) -> dict:
        entry = {
            "event": "call_viewed",
            "at": datetime.now(UTC).isoformat(),
            "analyst": analyst.email,
            "via": analyst.via,
            "call_id": call_id,
            "client": client,
        }
        line = json.dumps(entry, sort_keys=True)
        logger.info(line)
        if self._path is not None:
            with self._lock, self._path.open("a", encoding="utf-8") as f:
                f.write(line + "\n")
        return entry
