"""Bucket layout shared by Egress, the agent and the post-call pipeline.

    recordings/YYYY/MM/DD/<call_id>/audio.ogg     Egress output (agent and caller channels)
    recordings/YYYY/MM/DD/<call_id>/audio.N.ogg   later segments of a recording paused for a payment step
    recordings/YYYY/MM/DD/<call_id>/session.json  the agent's session report, written last
    recordings/YYYY/MM/DD/<call_id>/do_not_call.json  a do-not-call request, written when heard
    recordings/YYYY/MM/DD/<call_id>/*.raw.json  unredacted transcripts, only with keep_raw_transcript

Paths are date-prefixed so sensors list one day at a time. The day is the UTC date in the call
id (``call-<uuid7>``: the uuid7 carries the millisecond it was minted), so a call's objects are
found from its id alone: a call minted at 23:59:59.9 UTC that starts after midnight still files
under the day it was minted. Every call id is minted by us (the dialer for outbound calls, the
agent for inbound rooms, ``agent.worker.call_id_for``); anything else is no call and has no path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from callcenter.ids import call_id_floor, call_id_time

RECORDINGS_PREFIX = "recordings"
AUDIO_FILENAME = "audio.ogg"
REPORT_FILENAME = "session.json"
# Unredacted transcripts, written only where keep_raw_transcript allows; the bucket's lifecycle
# rule (manifests/gcs/recordings-lifecycle.json) deletes every object ending in RAW_SUFFIX.
RAW_SUFFIX = ".raw.json"
LIVE_TRANSCRIPT_RAW_FILENAME = "live_transcript.raw.json"  # the agent's live transcript, as heard
STT_TRANSCRIPT_RAW_FILENAME = "transcript.raw.json"  # post-call's STT output of the recording
DO_NOT_CALL_FILENAME = "do_not_call.json"  # a do-not-call request, written when heard (callcenter/do_not_call.py)

_OBJECT_RE = re.compile(
    r"^recordings/(?P<y>\d{4})/(?P<m>\d{2})/(?P<d>\d{2})/(?P<call_id>call-[0-9a-f-]{36})/(?P<name>[^/]+)$"
)


def day_prefix(day: date) -> str:
    return f"{RECORDINGS_PREFIX}/{day:%Y/%m/%d}/"


def call_prefix(call_id: str) -> str:
    """``recordings/YYYY/MM/DD/<call_id>/``, the day the id was minted (UTC); ValueError for a
    string that is no call id."""
    return f"{day_prefix(call_id_time(call_id).date())}{call_id}/"


def audio_path(call_id: str) -> str:
    return call_prefix(call_id) + AUDIO_FILENAME


def audio_segment_path(call_id: str, index: int) -> str:
    """A recording's ``index``-th segment (a recording stopped for a payment step and started
    again): the first is ``audio.ogg`` itself, the next ``audio.1.ogg``, ``audio.2.ogg``, ..."""
    if index < 0:
        raise ValueError(f"segment index must be >= 0, got {index}")
    return audio_path(call_id) if index == 0 else call_prefix(call_id) + f"audio.{index}.ogg"


def report_path(call_id: str) -> str:
    return call_prefix(call_id) + REPORT_FILENAME


def live_transcript_raw_path(call_id: str) -> str:
    return call_prefix(call_id) + LIVE_TRANSCRIPT_RAW_FILENAME


def do_not_call_path(call_id: str) -> str:
    return call_prefix(call_id) + DO_NOT_CALL_FILENAME


@dataclass(frozen=True)
class CallObject:
    day: date
    call_id: str
    name: str

    @property
    def prefix(self) -> str:
        return f"{day_prefix(self.day)}{self.call_id}/"


def parse_object_name(name: str) -> CallObject | None:
    """Parse a bucket object name in the recordings layout; None for anything else."""
    m = _OBJECT_RE.match(name)
    if not m:
        return None
    try:
        day = date(int(m["y"]), int(m["m"]), int(m["d"]))
    except ValueError:
        return None
    return CallObject(day=day, call_id=m["call_id"], name=m["name"])


def prefixes_to_list(since: datetime, now: datetime, max_call: timedelta) -> list[tuple[str, str]]:
    """(prefix, start_offset) pairs covering calls that may have completed after ``since``:
    the date prefixes from ``since - max_call`` to ``now``, each listed from the first call id
    that can matter (call ids sort by start time); the offset is the prefix itself when the
    whole day can."""
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
