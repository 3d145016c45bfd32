"""Discovery of completed calls: which session reports appeared since the last sensor tick.

Listing stays small: only the date prefixes that can hold new reports, and within each only
names at or after the oldest call that may still have been running at the last watermark
(call ids are uuid7, so names sort by start time). The cursor holds the watermark and the
keys of every report already requested at or after it.

The watermark trails the newest ``updated`` seen by ``SETTLE``: prefixes (and pages) are listed
one after another, so a report finalized during a tick can carry an ``updated`` older than one
listed later in the same tick; and the bucket's clock and ours differ a little. Jumping to the
newest time seen would skip such a report for good. Trailing, it is listed again next tick and
requested then; reports already requested are known by key and not requested twice.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from callcenter.ids import call_id_floor  # noqa: F401 (re-exported for tests)
from callcenter.paths import AUDIO_FILENAME, REPORT_FILENAME, parse_object_name, prefixes_to_list
from orchestration.defs.postcall.calls import CallRef

MAX_CALLS_PER_RUN = 200
# How far the watermark trails the tick: a tick's own listing time plus clock skew.
SETTLE = timedelta(minutes=2)


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
    kind: str = "postcall"  # the run key's prefix: which sensor found the work
    found: tuple[str, ...] = ()  # the watched objects' keys when they are not the reports (late recordings)

    @property
    def partition_key(self) -> str:
        return self.day.isoformat()

    @property
    def run_key(self) -> str:
        # Derived only from object names + generations: the same objects always give the same key.
        keys = [r.key for r in sorted(self.refs)] + sorted(self.found)
        digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
        return f"{self.kind}:{self.partition_key}:{digest}"


def discover(
    list_objects: Callable[[str, str], Iterable[ListedObject]],
    cursor: DiscoveryCursor,
    now: datetime,
    max_call: timedelta,
    max_per_run: int = MAX_CALLS_PER_RUN,
    late_recordings: bool = False,
) -> tuple[list[CallBatch], DiscoveryCursor]:
    """New session reports since ``cursor``, batched by day; and the advanced cursor.

    With ``late_recordings``: recordings that landed after their call's report instead (the agent
    gave up waiting for Egress), each as its report's ref; the cursor then keys the recordings.
    """
    reports: dict[str, ListedObject] = {}
    audio: list[ListedObject] = []
    # Through a few minutes past today: a report written just after midnight by a clock
    # slightly ahead of ours is in tomorrow's prefix.
    for prefix, offset in prefixes_to_list(cursor.since, now + SETTLE, max_call):
        for obj in list_objects(prefix, offset):
            parsed = parse_object_name(obj.name)
            if parsed is not None and parsed.name == REPORT_FILENAME:
                reports[obj.name.removesuffix(REPORT_FILENAME)] = obj
            elif parsed is not None and parsed.name == AUDIO_FILENAME:
                audio.append(obj)
    listed: list[tuple[ListedObject, CallRef]] = []  # (the watched object, the call's report)
    if late_recordings:
        for obj in audio:
            report = reports.get(obj.name.removesuffix(AUDIO_FILENAME))
            # Usually the recording lands first and the report's own run reads it.
            if report is not None and obj.updated >= report.updated:
                listed.append((obj, CallRef(report.name, report.generation)))
    else:
        listed = [(obj, CallRef(obj.name, obj.generation)) for obj in reports.values()]
    new = [(obj, ref) for obj, ref in listed if obj.updated >= cursor.since and _key(obj) not in cursor.at_since]
    if not new:
        return [], cursor
    newest = max(obj.updated for obj, _ in new)
    since = max(cursor.since, min(newest, now - SETTLE))
    # Everything listed at or after the new watermark has been requested: now or before.
    at_since = frozenset(_key(obj) for obj, _ in listed if obj.updated >= since)
    by_day: dict[date, dict[CallRef, list[str]]] = {}
    for obj, ref in new:
        by_day.setdefault(ref.day, {}).setdefault(ref, []).append(_key(obj))
    batches = []
    for day in sorted(by_day):
        refs = sorted(by_day[day])
        for i in range(0, len(refs), max_per_run):
            chunk = tuple(refs[i : i + max_per_run])
            if late_recordings:  # a recording uploaded again is new work for the same report
                found = tuple(k for ref in chunk for k in by_day[day][ref])
                batches.append(CallBatch(day, chunk, LATE_KIND, found))
            else:
                batches.append(CallBatch(day, chunk))
    return batches, DiscoveryCursor(since=since, at_since=at_since)


LATE_KIND = "postcall-late-recording"


def _key(obj: ListedObject) -> str:
    return f"{obj.name}#{obj.generation}"
