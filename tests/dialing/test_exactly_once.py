"""A run killed between recording an attempt and dialling, then retried, never dials twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from callcenter.dispatch import parse_dispatch
from callcenter.ids import new_call_id
from doubles.livekit_server import LiveKitDouble, TwirpFailure
from orchestration.defs.dialing.dialer import DialingError
from orchestration.defs.dialing.ledger import Attempt, AttemptStatus, DialStore, attempt_key
from tests.conftest import REPO_ROOT
from tests.dialing.conftest import FakeClock, campaign, catalog, lk_client, make_tick, ny_contacts, write_catalog


def killed_tick(
    target: dict[str, str], campaigns_dir: Path, double: LiveKitDouble, when: str, clock: FakeClock
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.dialing.crash_tick",
            json.dumps(target),
            str(campaigns_dir),
            double.url,
            double.api_key,
            double.api_secret,
            when,
            clock.now.isoformat(),
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]


@pytest.mark.parametrize("when", ["before", "after"])
async def test_killed_run_then_retry_dials_each_attempt_once(
    store: DialStore,
    ledger_target: dict[str, str],
    livekit_double: LiveKitDouble,
    bucket,
    clock: FakeClock,
    tmp_path: Path,
    when: str,
) -> None:
    camp = campaign(max_concurrent_calls=1)
    cat = write_catalog(tmp_path / "campaigns", camp)
    store.replace_contacts(camp.id, ny_contacts(2))

    killed_tick(ledger_target, tmp_path / "campaigns", livekit_double, when, clock)
    (reserved,) = store.attempts()
    # Recorded before the dispatch was attempted; marked as sending right before it went out.
    assert reserved.status is (AttemptStatus.RESERVED if when == "before" else AttemptStatus.SENDING)
    creates = livekit_double.calls("AgentDispatchService", "CreateDispatch")
    assert len(creates) == (0 if when == "before" else 1)

    clock.advance(timedelta(minutes=3))  # the dead run's lease has expired; Dagster retries
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, cat, lk, bucket, clock)
        retry = await tick.run()
        clock.advance(timedelta(minutes=1))
        again = await tick.run()

    creates = livekit_double.calls("AgentDispatchService", "CreateDispatch")
    assert len(creates) == 1, "the attempt was dispatched exactly once"
    assert creates[0].message.room == reserved.call_id
    assert parse_dispatch(creates[0].message.metadata).attempt_id == reserved.attempt_id
    assert (retry.redialed, retry.recovered) == (
        ([reserved.call_id], []) if when == "before" else ([], [reserved.call_id])
    )
    # The retry holds the campaign's only slot, so c-0002 waits; nothing else was dialled.
    assert retry.plans[camp.id].skip_counts == {"in_flight": 1, "capacity": 1}
    assert again.dialed[camp.id] == 0
    (only,) = store.attempts()
    assert only.status is AttemptStatus.DISPATCHED and only.attempt_id == reserved.attempt_id


async def test_a_dispatch_that_may_have_gone_out_is_never_sent_again(
    store: DialStore,
    ledger_target: dict[str, str],
    livekit_double: LiveKitDouble,
    bucket,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    """Killed while sending: whether LiveKit got it is unknown, and a call that rang leaves no
    trace once the agent deleted its room and before its report lands. So it is not sent again:
    it holds its slot until its report closes it or max_call_duration times it out as failed."""
    camp = campaign(max_concurrent_calls=1)
    cat = write_catalog(tmp_path / "campaigns", camp)
    store.replace_contacts(camp.id, ny_contacts(2))
    killed_tick(ledger_target, tmp_path / "campaigns", livekit_double, "sending", clock)
    (sending,) = store.attempts()
    assert sending.status is AttemptStatus.SENDING
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, cat, lk, bucket, clock)
        for minutes in (3, 15, 60):  # past the 10-minute recovery window too
            clock.advance(timedelta(minutes=minutes))
            result = await tick.run()
            assert result.unconfirmed == [sending.call_id] and result.redialed == []
            assert result.plans[camp.id].skip_counts == {"in_flight": 1, "capacity": 1}
        clock.advance(timedelta(hours=2))  # past max_call_duration: closed as failed, slot freed
        result = await tick.run()
    assert result.sweep.timed_out == [sending.call_id]
    # The freed slot goes to the next contact; the unconfirmed attempt itself was never sent again.
    creates = livekit_double.calls("AgentDispatchService", "CreateDispatch")
    assert [parse_dispatch(c.message.metadata).contact_id for c in creates] == ["c-0002"]
    assert all(c.message.room != sending.call_id for c in creates)
    first = next(a for a in store.attempts() if a.attempt_id == sending.attempt_id)
    assert first.status is AttemptStatus.CLOSED and first.outcome == "failed"


async def test_a_stale_reservation_with_no_trace_is_closed_not_redialled(
    sqlite_store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock, tmp_path: Path
) -> None:
    camp = campaign(max_concurrent_calls=1)
    cat = write_catalog(tmp_path / "campaigns", camp)
    sqlite_store.replace_contacts(camp.id, ny_contacts(1))
    killed_tick({"sqlite_path": str(sqlite_store.path)}, tmp_path / "campaigns", livekit_double, "before", clock)
    clock.advance(timedelta(hours=1))  # beyond the recovery window: we cannot know if it rang
    async with lk_client(livekit_double) as lk:
        result = await make_tick(sqlite_store, cat, lk, bucket, clock).run()
    (a,) = sqlite_store.attempts()
    assert result.expired == [a.call_id] and a.status is AttemptStatus.CLOSED and a.outcome == "failed"
    assert livekit_double.calls("AgentDispatchService", "CreateDispatch") == []
    assert result.plans[camp.id].skip_counts == {"backoff": 1}


async def test_a_recovered_reservation_that_livekit_refuses_fails_the_tick_and_dials_nobody_else(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    """A crashed run's reservation, still inside the recovery window, is sent by the next tick;
    LiveKit refusing it (no agent registered) cancels it, so no attempt is used, and fails the
    tick naming the attempt before anything is planned or dialled; the lease is released."""
    camp = campaign(max_concurrent_calls=3)
    store.replace_contacts(camp.id, ny_contacts(3))
    call_id = new_call_id()
    attempt = Attempt(
        f"att-{call_id[5:]}",
        attempt_key(camp.id, "c-0001", 1),
        camp.id,
        "c-0001",
        1,
        "+12125550001",
        call_id,
        AttemptStatus.RESERVED,
        clock.now,
    )
    assert store.reserve(attempt)

    def refuse(_req, _claims):
        raise TwirpFailure("not_found", "no worker registered for agent call-center-agent", 404)

    livekit_double.on("AgentDispatchService", "CreateDispatch", refuse)
    clock.advance(timedelta(minutes=3))  # the dead run's lease has expired
    async with lk_client(livekit_double) as lk:
        with pytest.raises(DialingError, match=f"recovered attempt {attempt.attempt_id}: refused: not_found"):
            await make_tick(store, catalog(camp), lk, bucket, clock).run()
    creates = livekit_double.calls("AgentDispatchService", "CreateDispatch")
    assert [c.message.room for c in creates] == [call_id], "only the recovered attempt was tried"
    (row,) = store.attempts()
    assert row.status is AttemptStatus.CANCELLED and "no worker registered" in row.note
    assert store.history(camp.id) == {}  # nobody's phone rang: the contact stays dialable
    assert store.acquire_lease("dialing-tick", "next", clock.now, 60)
