"""Discovery of completed calls: which session reports appeared since the last sensor tick.

The listing and its cursor are the shared ones (``callcenter.bucket.list_calls`` and
``ReportCursor``, which dialing's sweep uses too): only the date prefixes that can hold new
reports are listed, the watermark trails by ``SETTLE``, and the keys of every report already
requested at or after it are kept so that none is requested twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from callcenter.bucket import ListedObject, ReportCursor, list_calls
from orchestration.defs.postcall.calls import CallRef

MAX_CALLS_PER_RUN = 200


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
    cursor: ReportCursor,
    now: datetime,
    max_call: timedelta,
    max_per_run: int = MAX_CALLS_PER_RUN,
    late_recordings: bool = False,
) -> tuple[list[CallBatch], ReportCursor]:
    """New session reports since ``cursor``, batched by day; and the advanced cursor.

    With ``late_recordings``: recordings that landed after their call's report instead (the agent
    gave up waiting for Egress), each as its report's ref; the cursor then keys the recordings.
    """
    listing = list_calls(list_objects, cursor.since, now, max_call)
    listed: list[tuple[ListedObject, CallRef]] = []  # (the watched object, the call's report)
    if late_recordings:
        for obj in listing.recordings:
            report = listing.report_of(obj)
            # Usually the recording lands first and the report's own run reads it.
            if report is not None and obj.updated >= report.updated:
                listed.append((obj, CallRef(report.name, report.generation)))
    else:
        listed = [(obj, CallRef(obj.name, obj.generation)) for obj in listing.reports.values()]
    new, advanced = cursor.advance(listed, now)
    if not new:
        return [], cursor
    by_day: dict[date, dict[CallRef, list[str]]] = {}
    for obj, ref in new:
        by_day.setdefault(ref.day, {}).setdefault(ref, []).append(obj.key)
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
    return batches, advanced


LATE_KIND = "postcall-late-recording"
