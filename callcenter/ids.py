"""Call identifiers: the LiveKit room name is the call id, ``call-<uuid7>`` (time-ordered)."""

from __future__ import annotations

import random
import re
import uuid
from datetime import UTC, datetime

import uuid_utils

_system_random = random.SystemRandom()

CALL_ID_RE = re.compile(r"^call-[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def new_call_id(at: datetime | None = None) -> str:
    """A new call id; ``at`` fixes the uuid7 timestamp (demo data, backfills)."""
    if at is None:
        return f"call-{uuid_utils.uuid7()}"
    return deterministic_call_id(at, _system_random)


def deterministic_call_id(at: datetime, rng: random.Random) -> str:
    """A call id whose random bits come from ``rng``: reproducible demo data and tests."""
    ms = int(at.timestamp() * 1000)
    value = (ms & (2**48 - 1)) << 80 | 0x7 << 76 | rng.getrandbits(12) << 64 | 0b10 << 62 | rng.getrandbits(62)
    return f"call-{uuid.UUID(int=value)}"


def is_call_id(value: str) -> bool:
    return bool(CALL_ID_RE.match(value))


def call_id_time(call_id: str) -> datetime:
    """The creation time encoded in a call id's uuid7."""
    if not is_call_id(call_id):
        raise ValueError(f"not a call id: {call_id!r} (expected call-<uuid7>)")
    hex_ms = call_id[5:13] + call_id[14:18]
    return datetime.fromtimestamp(int(hex_ms, 16) / 1000, tz=UTC)


def call_id_floor(at: datetime) -> str:
    """The smallest call id of calls created at or after ``at``: names sort by creation time,
    so a bucket listing can start there (``start_offset``)."""
    ms = max(int(at.timestamp() * 1000), 0)
    h = f"{ms:012x}"
    return f"call-{h[:8]}-{h[8:12]}-7000-8000-000000000000"
