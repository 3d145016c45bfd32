"""A day range of recorded calls replayed through one agent worker, one call after another."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.replay import ReplayStatus, read_result
from tests.replay.calls import record_call, replay

pytestmark = [pytest.mark.slow, pytest.mark.calls, pytest.mark.xdist_group("e2e_calls"), pytest.mark.timeout(300)]


def test_a_day_of_calls_replays_every_call_of_that_day_only(real_livekit, engines, new_bucket) -> None:
    """Fails with the worker's capacity at one call: the first call's job, still writing its report,
    kept the worker full when the second room was dispatched, and no agent joined it."""
    bucket = new_bucket("replay-days")
    day = (datetime.now(UTC) - timedelta(days=2)).replace(hour=15, minute=0, second=0, microsecond=0)
    ids = [
        record_call(bucket, at, seed=100 + i)
        for i, at in enumerate([day, day + timedelta(hours=1), day + timedelta(days=1)])
    ]
    started = time.monotonic()
    run = replay(
        bucket,
        f"replay-scratch-{uuid.uuid4().hex[:8]}",
        real_livekit,
        engines,
        {"first_day": day.date().isoformat(), "persona": "inbound_support"},
    )
    print(f"replay of two calls: {time.monotonic() - started:.1f} s")  # docs/benchmarks.md, never asserted
    assert run.success
    result = read_result(bucket.recordings, run.run_id)
    assert [r.call_id for r in result.rows] == sorted(ids[:2])  # the next day's call is not in the range
    assert [r.status for r in result.rows] == [ReplayStatus.REPLAYED] * 2, [r.reason for r in result.rows]
    assert result.selection == f"day {day.date()}: 2 calls"
