"""The recordings sensor against the GCS emulator: explicit cursors, run keys, duplicates, generations."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from callcenter.bucket import ListedObject, ReportCursor
from callcenter.ids import call_id_floor, new_call_id
from callcenter.paths import audio_path, prefixes_to_list, report_path
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.discovery import discover
from orchestration.defs.postcall.sensors import call_recordings_sensor

pytestmark = pytest.mark.xdist_group("postcall")


def put_call(bucket, started_at: datetime) -> str:
    call_id = new_call_id(started_at)
    bucket.write_bytes(audio_path(call_id), b"OggS", "audio/ogg")
    bucket.write_bytes(report_path(call_id), b"{}", "application/json")
    return call_id


def evaluate(bucket, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, resources={"recordings_bucket": bucket})
    result = call_recordings_sensor(context)
    return (result if isinstance(result, list) else [result]), context.cursor


def test_new_reports_become_day_partition_runs_and_the_cursor_advances(bucket) -> None:
    now = datetime.now(UTC)
    calls = [put_call(bucket, now - timedelta(minutes=m)) for m in (3, 2, 1)]
    put_call(bucket, now - timedelta(days=10))  # older than the lookback: never listed

    requests, cursor = evaluate(bucket, None)
    # One run per day partition (two only if the minute crossed midnight).
    assert {r.partition_key for r in requests} == {(now - timedelta(minutes=m)).date().isoformat() for m in (3, 2, 1)}
    keys = [k for r in requests for k in r.run_config["ops"]["call_transcripts"]["config"]["calls"]]
    assert sorted(CallRef.parse(k).call_id for k in keys) == sorted(calls)
    for req in requests:
        assert req.tags["callcenter/domain"] == "postcall"
        assert req.run_key.startswith(f"postcall:{req.partition_key}:")
    assert cursor is not None and json.loads(cursor)["since"]

    # Nothing new: skip, cursor unchanged.
    again, same_cursor = evaluate(bucket, cursor)
    assert isinstance(again[0], dg.SkipReason) and same_cursor == cursor

    # A duplicate notification (the same tick evaluated again from the old cursor) yields the same run key,
    # which Dagster will not launch twice.
    replay, _ = evaluate(bucket, None)
    assert [r.run_key for r in replay] == [r.run_key for r in requests]

    # One more call: only it is requested.
    later = put_call(bucket, now)
    (new_req,), _ = evaluate(bucket, cursor)
    new_keys = new_req.run_config["ops"]["call_transcripts"]["config"]["calls"]
    assert [CallRef.parse(k).call_id for k in new_keys] == [later]


def test_a_new_generation_of_a_report_is_new_work(bucket) -> None:
    started = datetime.now(UTC) - timedelta(minutes=5)
    call_id = put_call(bucket, started)
    (first,), cursor = evaluate(bucket, None)
    bucket.write_bytes(report_path(call_id), b'{"rewritten": true}', "application/json")
    (second,), _ = evaluate(bucket, cursor)
    (k1,) = first.run_config["ops"]["call_transcripts"]["config"]["calls"]
    (k2,) = second.run_config["ops"]["call_transcripts"]["config"]["calls"]
    assert CallRef.parse(k1).report_object == CallRef.parse(k2).report_object
    assert CallRef.parse(k2).generation > CallRef.parse(k1).generation
    assert first.run_key != second.run_key


def test_listing_is_bounded_to_recent_prefixes() -> None:
    since = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    pairs = prefixes_to_list(since, since + timedelta(minutes=1), max_call=timedelta(hours=6))
    assert pairs == [("recordings/2026/11/25/", "recordings/2026/11/25/" + call_id_floor(since - timedelta(hours=6)))]
    # Just after midnight, yesterday's prefix is still listed (calls that started before midnight).
    late = datetime(2026, 11, 25, 1, 0, tzinfo=UTC)
    days = [p for p, _ in prefixes_to_list(late, late, max_call=timedelta(hours=6))]
    assert days == ["recordings/2026/11/24/", "recordings/2026/11/25/"]


def test_call_id_floor_sorts_before_every_later_call() -> None:
    at = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    floor = call_id_floor(at)
    assert floor <= new_call_id(at) and floor <= new_call_id(at + timedelta(seconds=1))
    assert new_call_id(at - timedelta(seconds=1)) < floor


def test_cursor_round_trip() -> None:
    cursor = ReportCursor(since=datetime(2026, 11, 25, tzinfo=UTC), at_since=frozenset({"a#1"}))
    assert ReportCursor.parse(cursor.serialize(), datetime.now(UTC), timedelta(days=1)) == cursor


def test_a_report_finalized_while_a_tick_lists_is_requested_next_tick() -> None:
    """Day D is listed, then D+1; a long call of day D finishes while D+1 is being listed, so
    its ``updated`` is older than a short D+1 call's seen in the same tick. The watermark must
    not jump past it."""
    t = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)
    day_d = report_path(new_call_id(t - timedelta(hours=1)))  # started 23:30
    day_d1 = report_path(new_call_id(t - timedelta(minutes=1)))
    long_call = ListedObject(day_d, 1, t + timedelta(seconds=5))  # finalized mid-tick
    short_call = ListedObject(day_d1, 1, t + timedelta(seconds=8))
    buckets = {"first": {day_d1: short_call}, "second": {day_d: long_call, day_d1: short_call}}
    state = {"tick": "first"}

    def list_objects(prefix: str, offset: str):
        return [o for name, o in sorted(buckets[state["tick"]].items()) if name.startswith(prefix) and name >= offset]

    cursor = ReportCursor(since=t - timedelta(minutes=5))
    first, cursor = discover(list_objects, cursor, t + timedelta(seconds=10), timedelta(hours=6))
    assert [r.report_object for b in first for r in b.refs] == [day_d1]
    state["tick"] = "second"
    second, cursor = discover(list_objects, cursor, t + timedelta(seconds=40), timedelta(hours=6))
    assert [r.report_object for b in second for r in b.refs] == [day_d]  # found, and day_d1 not again
    third, _ = discover(list_objects, cursor, t + timedelta(minutes=5), timedelta(hours=6))
    assert third == []


def test_the_nightly_reconciliation_reprocesses_every_call_of_the_last_week() -> None:
    """What the sensor's bounded listing cannot see (a report landing hours after its call
    started) is caught by a nightly run over every call of each of the last 7 days."""
    from orchestration.defs.postcall.sensors import RECONCILE_DAYS, postcall_reconcile_schedule

    at = datetime(2026, 11, 26, 3, 15, tzinfo=UTC)
    requests = postcall_reconcile_schedule(dg.build_schedule_context(scheduled_execution_time=at))
    assert [r.partition_key for r in requests] == [
        (at - timedelta(days=n)).date().isoformat() for n in range(RECONCILE_DAYS, -1, -1)
    ]
    for r in requests:
        assert r.run_config["ops"]["call_transcripts"]["config"]["calls"] == []  # every call of the day
        assert r.run_key.startswith(f"reconcile:{r.partition_key}:") and r.tags["callcenter/domain"] == "postcall"
