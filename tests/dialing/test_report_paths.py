"""A call's report is found from its call id alone, and one lister (with one cursor rule) feeds
post-call discovery and dialing's sweep alike, across a UTC midnight."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.bucket import ListedObject, ReportCursor
from callcenter.ids import deterministic_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import day_prefix, report_path
from orchestration.defs.dialing.ledger import Attempt, AttemptStatus, DialStore, attempt_key
from orchestration.defs.dialing.outcomes import sweep_inbound_do_not_call, sweep_outcomes
from orchestration.defs.postcall.discovery import discover
from orchestration.resources.storage import RecordingsBucket
from tests.dialing.conftest import write_report

MIDNIGHT = datetime(2026, 11, 26, tzinfo=UTC)
MINTED = MIDNIGHT - timedelta(milliseconds=100)  # 23:59:59.900 UTC on the 25th
MAX_CALL = timedelta(hours=2)


def open_attempt(store: DialStore, call_id: str, at: datetime) -> None:
    attempt_id = f"att-{call_id[5:]}"
    store.reserve(
        Attempt(
            attempt_id,
            attempt_key("renewals", "c-0001", 1),
            "renewals",
            "c-0001",
            1,
            "+12125550001",
            call_id,
            AttemptStatus.RESERVED,
            at,
        )
    )
    store.mark_dispatched(attempt_id, "AD_1", at)


def test_the_report_path_is_the_call_ids_day_even_when_the_call_starts_after_midnight() -> None:
    call_id = deterministic_call_id(MINTED, random.Random(1))
    assert report_path(call_id).startswith(day_prefix(MINTED.date()) + call_id + "/")
    assert report_path(call_id).startswith("recordings/2026/11/25/")


def test_an_attempt_minted_before_midnight_is_closed_by_one_read(store: DialStore, bucket: RecordingsBucket) -> None:
    call_id = deterministic_call_id(MINTED, random.Random(2))
    open_attempt(store, call_id, MINTED)
    # the call starts and ends on the 26th; the agent files its report under the id's day
    report = write_report(bucket, call_id, CallOutcome.ANSWERED, MIDNIGHT + timedelta(minutes=2))
    assert report.started_at.date() == MIDNIGHT.date()
    reads: list[str] = []

    def read(name: str) -> bytes | None:
        reads.append(name)
        return bucket.read_if_present(name)

    sweep = sweep_outcomes(store, read, MIDNIGHT + timedelta(minutes=3), MAX_CALL)
    assert sweep.closed == {"answered": 1}
    assert reads == [report_path(call_id)]  # one path per open attempt, no guessing
    assert bucket.recordings.read_report(call_id) == report


def test_a_report_is_read_from_its_call_id_alone(bucket: RecordingsBucket) -> None:
    call_id = deterministic_call_id(MINTED, random.Random(6))
    assert bucket.recordings.read_report(call_id) is None  # not landed yet
    bucket.write_bytes(report_path(call_id), b'{"call_id": "not a report"}', "application/json")
    with pytest.raises(ValueError, match="validation error"):
        bucket.recordings.read_report(call_id)
    with pytest.raises(ValueError, match="not a call id"):
        bucket.recordings.read_report("in_+12125550199_abc")


def test_a_report_filed_under_another_day_is_still_closed_by_the_listing_not_timed_out(
    store: DialStore, bucket: RecordingsBucket
) -> None:
    """An agent from before the path rule filed by the call's start: the attempt must not time
    out (and be dialled again) just because its report is not at the id's path."""
    call_id = deterministic_call_id(MINTED, random.Random(3))
    open_attempt(store, call_id, MINTED)
    ended = MIDNIGHT + timedelta(minutes=2)
    report = write_report(bucket, call_id, CallOutcome.ANSWERED, ended)
    old_layout = f"{day_prefix(report.started_at.date())}{call_id}/session.json"
    bucket.write_bytes(old_layout, bucket.read_bytes(report_path(call_id)), "application/json")
    bucket.bucket.blob(report_path(call_id)).delete()

    now = MIDNIGHT + timedelta(minutes=3)
    assert sweep_outcomes(store, bucket.read_if_present, now, MAX_CALL).closed == {}
    sweep_inbound_do_not_call(store, bucket.list_objects, bucket.read_if_present, now, MAX_CALL)
    closed = store.attempt_by_call(call_id)
    assert closed.status is AttemptStatus.CLOSED and closed.outcome is CallOutcome.ANSWERED
    late = sweep_outcomes(store, bucket.read_if_present, now + MAX_CALL * 2, MAX_CALL)
    assert late.timed_out == []


def test_one_lister_feeds_post_call_and_dialing(store: DialStore, bucket: RecordingsBucket) -> None:
    """An inbound caller asks not to be called on a call that crosses midnight: post-call
    discovery requests its report and dialing suppresses the number, both through the same
    lister and cursor rule, each listing the same prefixes and keeping the same watermark."""
    call_id = deterministic_call_id(MINTED, random.Random(4))
    write_report(
        bucket,
        call_id,
        CallOutcome.DO_NOT_CALL,
        MIDNIGHT + timedelta(minutes=1),
        do_not_call=True,
        direction=CallDirection.INBOUND,
        from_number="+12125550199",
    )
    listed: dict[str, list[tuple[str, str]]] = {"postcall": [], "dialing": []}

    def lister(who: str):
        def list_objects(prefix: str, offset: str) -> list[ListedObject]:
            listed[who].append((prefix, offset))
            return list(bucket.list_objects(prefix, offset))

        return list_objects

    now, since = MIDNIGHT + timedelta(minutes=3), MIDNIGHT - timedelta(minutes=10)
    batches, cursor = discover(lister("postcall"), ReportCursor(since=since), now, MAX_CALL)
    assert [r.call_id for b in batches for r in b.refs] == [call_id]
    store.set_mark("inbound_do_not_call", since)
    added = sweep_inbound_do_not_call(store, lister("dialing"), bucket.read_if_present, now, MAX_CALL)
    assert added == ["+12125550199"]
    assert listed["postcall"] == listed["dialing"]
    assert [p for p, _ in listed["dialing"]] == ["recordings/2026/11/25/", "recordings/2026/11/26/"]
    assert store.mark("inbound_do_not_call") == cursor.since
