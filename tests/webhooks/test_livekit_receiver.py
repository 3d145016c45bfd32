"""LiveKit's webhooks in: the real livekit-server posts signed webhooks to the receiver on
loopback; room_finished frees an outbound attempt's call slot with no session report, the
report still closes it exactly once, and call.started/call.ended go out signed."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from livekit import api
from standardwebhooks import Webhook

from callcenter.ids import new_call_id
from callcenter.outcomes import CallOutcome
from devstack.livekit import LocalLiveKit
from orchestration.defs.dialing.ledger import Attempt, AttemptStatus, DialStore, SqliteDialStore, attempt_key
from orchestration.defs.webhooks.outbox import Outbox, WebhookEndpoint
from orchestration.defs.webhooks.service import create_app
from tests.conftest import free_port, stop_process, wait_for_port
from tests.webhooks.conftest import serve, stop

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def dispatched_attempt(store: DialStore, campaign: str = "spring", contact: str = "c-001") -> Attempt:
    call_id = new_call_id()
    attempt = Attempt(
        attempt_id=f"att-{call_id[5:]}",
        idempotency_key=attempt_key(campaign, contact, 1),
        campaign_id=campaign,
        contact_id=contact,
        attempt_number=1,
        phone_number="+12125550123",
        call_id=call_id,
        status=AttemptStatus.RESERVED,
        reserved_at=datetime.now(UTC),
    )
    assert store.reserve(attempt)
    assert store.mark_sending(attempt.attempt_id)
    assert store.mark_dispatched(attempt.attempt_id, "AD_test", datetime.now(UTC))
    return attempt


@pytest.fixture
def receiver_stack(tmp_path: Path, subscriber) -> Iterator[tuple[LocalLiveKit, DialStore, str, Outbox]]:
    """The webhook service (receiver + delivery loop) on loopback, and a real livekit-server of
    its own whose config posts webhooks to it (the session's real_livekit has no webhook URL)."""
    store = SqliteDialStore(tmp_path / "ledger.sqlite3")
    lk = LocalLiveKit(http_port=free_port(), rtc_tcp_port=free_port(), rtc_udp_port=free_port(), redis_port=free_port())
    outbox = Outbox(store, [WebhookEndpoint(name="crm", url=subscriber.url, secrets=(SECRET,))])
    receiver = api.WebhookReceiver(api.TokenVerifier(lk.api_key, lk.api_secret))
    server, thread, port = serve(create_app(store, receiver, outbox, poll_s=0.2))
    receiver_url = f"http://127.0.0.1:{port}/livekit"
    config = lk.write_config(tmp_path / "livekit.yaml", webhook_urls=[receiver_url])
    procs: list[subprocess.Popen] = []
    try:
        for svc in lk.services(config):
            out = (tmp_path / f"{svc.name}.log").open("wb")
            procs.append(subprocess.Popen(svc.argv, stdout=out, stderr=subprocess.STDOUT))
            wait_for_port(svc.port, procs[-1], timeout=30)
        yield lk, store, receiver_url, outbox
    finally:
        for proc in reversed(procs):
            stop_process(proc)
        stop(server, thread)
        store.close()


def wait_until(predicate, timeout: float = 20.0, what: str = "condition"):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} not reached in {timeout:.0f} s")


@pytest.mark.timeout(120)
def test_room_finished_from_the_real_server_frees_the_attempt_without_a_report(receiver_stack, subscriber) -> None:
    lk, store, _, _ = receiver_stack
    attempt = dispatched_attempt(store)
    assert store.live_counts() == {"spring": 1}

    async def room_lifecycle() -> None:
        async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as client:
            await client.room.create_room(api.CreateRoomRequest(name=attempt.call_id))
            await asyncio.sleep(0.5)
            await client.room.delete_room(api.DeleteRoomRequest(room=attempt.call_id))

    started = time.monotonic()
    asyncio.run(room_lifecycle())
    ended = wait_until(
        lambda: (a := store.attempt_by_call(attempt.call_id)) and a.status is AttemptStatus.ENDED and a,
        what="the attempt freed by room_finished",
    )
    freed_after = time.monotonic() - started
    # No session report was written: the slot is free, the attempt still waits for its outcome.
    assert store.live_counts() == {}
    assert ended.outcome is None and ended.closed_at is None
    assert store.history("spring")["c-001"].open  # the contact is not redialled before the report
    assert store.number_in_call(attempt.phone_number) == "spring"  # nor the number, by any campaign
    print(f"attempt freed {freed_after:.2f} s after the room lifecycle began")

    # The session report lands later and closes it, once.
    assert store.close_attempt(attempt.call_id, CallOutcome.ANSWERED, datetime.now(UTC), abandoned=False)
    assert not store.close_attempt(attempt.call_id, CallOutcome.FAILED, datetime.now(UTC))
    assert store.attempt_by_call(attempt.call_id).outcome is CallOutcome.ANSWERED

    # call.started and call.ended went out signed, ids only.
    wait_until(lambda: len(subscriber.received) >= 2, what="two outbound webhooks")
    events = {}
    for headers, body, _ in subscriber.received:
        payload = Webhook(SECRET).verify(body, headers)
        events[payload["type"]] = payload["data"]
    assert set(events) == {"call.started", "call.ended"}
    assert events["call.ended"]["call_id"] == attempt.call_id
    assert events["call.ended"]["campaign_id"] == "spring" and events["call.ended"]["direction"] == "outbound"
    assert events["call.ended"]["duration_s"] >= 0
    raw = b"".join(subscriber.bodies())
    assert b"+1212" not in raw and b"2125550123" not in raw  # never the number


def test_a_room_of_no_attempt_is_an_inbound_call_and_other_rooms_are_ignored(receiver_stack, subscriber) -> None:
    lk, store, _, _ = receiver_stack
    inbound = new_call_id()

    async def rooms() -> None:
        async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as client:
            for name in (inbound, "lobby-not-a-call"):
                await client.room.create_room(api.CreateRoomRequest(name=name))
                await client.room.delete_room(api.DeleteRoomRequest(room=name))

    asyncio.run(rooms())
    wait_until(lambda: len(subscriber.received) >= 2, what="the inbound call's two webhooks")
    time.sleep(0.5)
    datas = [json.loads(b)["data"] for b in subscriber.bodies()]
    assert {d["call_id"] for d in datas} == {inbound}
    assert {d["direction"] for d in datas} == {"inbound"}


def _signed(lk: LocalLiveKit, body: str, secret: str | None = None) -> str:
    digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
    token = api.AccessToken(lk.api_key, secret or lk.api_secret).with_sha256(digest)
    return token.to_jwt()


def test_forged_or_unsigned_webhooks_are_refused(receiver_stack) -> None:
    lk, store, url, _ = receiver_stack
    attempt = dispatched_attempt(store)
    body = json.dumps({"event": "room_finished", "room": {"name": attempt.call_id, "sid": "RM_forged"}})
    cases = {
        "unsigned": {},
        "signed with another secret": {"Authorization": _signed(lk, body, secret="not-the-server-secret-0123456789")},
        "signature of another body": {"Authorization": _signed(lk, body.replace("RM_forged", "RM_other"))},
        "garbage token": {"Authorization": "Bearer abc.def.ghi"},
    }
    for why, headers in cases.items():
        r = httpx.post(url, content=body, headers={"content-type": "application/webhook+json", **headers})
        assert r.status_code == 401, why
        assert r.json()["error"]["code"] == 401
    assert store.attempt_by_call(attempt.call_id).status is AttemptStatus.DISPATCHED
    # The same request properly signed is taken: the refusals above were for the signature.
    r = httpx.post(
        url, content=body, headers={"content-type": "application/webhook+json", "Authorization": _signed(lk, body)}
    )
    assert r.status_code == 200 and r.json()["freed_slot"] is True
    assert store.attempt_by_call(attempt.call_id).status is AttemptStatus.ENDED


def test_a_sip_callee_leaving_frees_the_slot_and_duplicates_change_nothing(receiver_stack) -> None:
    lk, store, url, _ = receiver_stack
    attempt = dispatched_attempt(store)

    def post(event: dict) -> dict:
        body = json.dumps(event)
        r = httpx.post(url, content=body, headers={"Authorization": _signed(lk, body)})
        assert r.status_code == 200
        return r.json()

    agent_left = {"event": "participant_left", "room": {"name": attempt.call_id, "sid": "RM_1"},
                  "participant": {"identity": "agent", "kind": "AGENT"}}  # fmt: skip
    assert post(agent_left)["freed_slot"] is False
    callee_left = {"event": "participant_left", "room": {"name": attempt.call_id, "sid": "RM_1"},
                   "participant": {"identity": "sip-callee", "kind": "SIP"}}  # fmt: skip
    assert post(callee_left)["freed_slot"] is True
    assert post(callee_left)["freed_slot"] is False  # LiveKit retried: nothing changes twice
    finished = {"event": "room_finished", "room": {"name": attempt.call_id, "sid": "RM_1"}, "createdAt": "1"}
    assert post(finished)["freed_slot"] is False
    assert post(finished)["freed_slot"] is False
    assert store.attempt_by_call(attempt.call_id).status is AttemptStatus.ENDED


def test_the_report_sweep_still_closes_an_ended_attempt_and_times_out_a_silent_one(sqlite_store) -> None:
    from orchestration.defs.dialing.outcomes import sweep_outcomes

    attempt = dispatched_attempt(sqlite_store)
    assert sqlite_store.mark_ended(attempt.call_id, "room finished")
    now = datetime.now(UTC)
    sweep = sweep_outcomes(sqlite_store, lambda _name: None, now, timedelta(hours=2))
    assert sweep.timed_out == [] and sqlite_store.attempt_by_call(attempt.call_id).status is AttemptStatus.ENDED
    sweep = sweep_outcomes(sqlite_store, lambda _name: None, now + timedelta(hours=3), timedelta(hours=2))
    assert sweep.timed_out == [attempt.call_id]
    closed = sqlite_store.attempt_by_call(attempt.call_id)
    assert closed.status is AttemptStatus.CLOSED and closed.outcome is CallOutcome.FAILED


def test_an_ended_attempts_report_still_closes_it_with_its_do_not_call_request(store, bucket) -> None:
    """room_finished must not cost the outcome: the report that lands after it closes the
    attempt (once) and its do-not-call request reaches suppression."""
    from orchestration.defs.dialing.assets import bucket_reader
    from orchestration.defs.dialing.outcomes import sweep_outcomes
    from tests.dialing.conftest import write_report

    attempt = dispatched_attempt(store)
    assert store.mark_ended(attempt.call_id, "room finished")
    now = datetime.now(UTC)
    write_report(bucket, attempt.call_id, CallOutcome.DO_NOT_CALL, now, do_not_call=True)
    sweep = sweep_outcomes(store, bucket_reader(bucket), now, timedelta(hours=2))
    assert sweep.closed == {"do_not_call": 1}
    closed = store.attempt_by_call(attempt.call_id)
    assert closed.status is AttemptStatus.CLOSED and closed.outcome is CallOutcome.DO_NOT_CALL
    assert store.is_do_not_call(attempt.phone_number)
    assert sweep_outcomes(store, bucket_reader(bucket), now, timedelta(hours=2)).closed == {}  # once
