"""Discovery of completed calls: which session reports appeared since the last sensor tick.

Listing stays small: only the date prefixes that can hold new reports, and within each only
names at or after the oldest call that may still have been running at the last watermark
(call ids are uuid7, so names sort by start time). The cursor holds the watermark (the
newest ``updated`` time seen) and the keys seen at exactly that instant.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from callcenter.paths import REPORT_FILENAME, day_prefix, parse_object_name
from orchestration.defs.postcall.calls import CallRef

MAX_CALLS_PER_RUN = 200


@dataclass(frozen=True)
class ListedObject:
    name: str
    generation: int
    updated: datetime


@dataclass(frozen=True)
class DiscoveryCursor:
    since: datetime
    at_since: frozenset[str] = frozenset()

    def serialize(self) -> str:
        return json.dumps({"since": self.since.isoformat(), "at_since": sorted(self.at_since)})

    @classmethod
    def parse(cls, raw: str | None, now: datetime, initial_lookback: timedelta) -> DiscoveryCursor:
        if not raw:
            return cls(since=now - initial_lookback)
        data = json.loads(raw)
        return cls(since=datetime.fromisoformat(data["since"]), at_since=frozenset(data.get("at_since", ())))


@dataclass(frozen=True)
class CallBatch:
    """One run's worth of new calls, all from one day partition."""

    day: date
    refs: tuple[CallRef, ...]

    @property
    def partition_key(self) -> str:
        return self.day.isoformat()

    @property
    def run_key(self) -> str:
        # Derived only from object names + generations: the same objects always give the same key.
        digest = hashlib.sha256("\n".join(r.key for r in sorted(self.refs)).encode()).hexdigest()[:24]
        return f"postcall:{self.partition_key}:{digest}"


def call_id_floor(at: datetime) -> str:
    """The smallest call id (as a name component) of calls started at or after ``at``."""
    ms = max(int(at.timestamp() * 1000), 0)
    h = f"{ms:012x}"
    return f"call-{h[:8]}-{h[8:12]}-7000-8000-000000000000"


def prefixes_to_list(since: datetime, now: datetime, max_call: timedelta) -> list[tuple[str, str]]:
    """(prefix, start_offset) pairs covering calls that may have completed after ``since``."""
    floor = since - max_call
    out = []
    day = floor.astimezone(UTC).date()
    while day <= now.astimezone(UTC).date():
        prefix = day_prefix(day)
        day_start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        offset = prefix + call_id_floor(floor) if floor > day_start else prefix
        out.append((prefix, offset))
        day += timedelta(days=1)
    return out


def discover(
    list_objects: Callable[[str, str], Iterable[ListedObject]],
    cursor: DiscoveryCursor,
    now: datetime,
    max_call: timedelta,
    max_per_run: int = MAX_CALLS_PER_RUN,
) -> tuple[list[CallBatch], DiscoveryCursor]:
    """New session reports since ``cursor``, batched by day; and the advanced cursor."""
    new: list[tuple[ListedObject, CallRef]] = []
    for prefix, offset in prefixes_to_list(cursor.since, now, max_call):
        for obj in list_objects(prefix, offset):
            parsed = parse_object_name(obj.name)
            if parsed is None or parsed.name != REPORT_FILENAME:
                continue
            ref = CallRef(obj.name, obj.generation)
            if obj.updated < cursor.since or (obj.updated == cursor.since and ref.key in cursor.at_since):
                continue
            new.append((obj, ref))
    if not new:
        return [], cursor
    newest = max(obj.updated for obj, _ in new)
    at_newest = {ref.key for obj, ref in new if obj.updated == newest}
    if newest == cursor.since:
        at_newest |= cursor.at_since
    by_day: dict[date, list[CallRef]] = {}
    for _, ref in new:
        by_day.setdefault(ref.day, []).append(ref)
    batches = []
    for day in sorted(by_day):
        refs = sorted(set(by_day[day]))
        for i in range(0, len(refs), max_per_run):
            batches.append(CallBatch(day, tuple(refs[i : i + max_per_run])))
    return batches, DiscoveryCursor(since=newest, at_since=frozenset(at_newest))
