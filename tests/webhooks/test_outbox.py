"""Outbound webhooks: Standard Webhooks signatures, the outbox on both ledger engines, retries with
backoff against a real failing endpoint, the delivery log, and replay from the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from orchestration.defs.webhooks import cli
from orchestration.defs.webhooks.outbox import (
    DeliveryStatus,
    EndpointsConfigError,
    EventType,
    Outbox,
    WebhookEndpoint,
    backoff_delay,
    parse_endpoints,
    record_event,
)

# The Standard Webhooks specification's published test vector.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID, SPEC_TS, SPEC_BODY = "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, '{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

NEW_SECRET = "whsec_" + "bmV3LXNlY3JldC1mb3ItdGhlLXRlc3RzLTAxMjM0NTY3"  # base64 of a test-only key


def endpoint(url: str, secrets: tuple[str, ...] = (SPEC_SECRET,), **kw) -> WebhookEndpoint:
    return WebhookEndpoint(name=kw.pop("name", "crm"), url=url, secrets=secrets, **kw)


def test_signature_matches_the_spec_vector() -> None:
    ep = endpoint("http://127.0.0.1:1/x")
    assert ep.sign(SPEC_ID, datetime.fromtimestamp(SPEC_TS, UTC), SPEC_BODY) == SPEC_SIGNATURE


def test_rotation_signs_with_every_secret_and_either_verifies() -> None:
    ep = endpoint("http://127.0.0.1:1/x", secrets=(NEW_SECRET, SPEC_SECRET))
    now = datetime.now(UTC)
    header = ep.sign("msg_1", now, "{}")
    assert len(header.split(" ")) == 2
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": header}
    for secret in (NEW_SECRET, SPEC_SECRET):
        assert Webhook(secret).verify("{}", headers) == {}
    with pytest.raises(WebhookVerificationError):
        Webhook("whsec_" + "b3RoZXI=").verify("{}", headers)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("not json", "is not JSON"),
        ('{"name": "crm"}', "must be a JSON list"),
        ('[{"name": "crm", "url": "http://x", "secrets": ["plain-secret"]}]', "must start with whsec_"),
        ('[{"name": "crm", "url": "http://x", "secrets": ["whsec_%%%"]}]', "not valid base64"),
        ('[{"name": "crm", "url": "http://x", "secrets": []}]', "secrets"),
        ('[{"name": "crm", "url": "ftp://x", "secrets": ["whsec_b3RoZXI="]}]', "url"),
        ('[{"name": "crm", "url": "http://x", "secrets": ["whsec_b3RoZXI="], "events": ["call.exploded"]}]', "events"),
        (
            '[{"name": "a", "url": "http://x", "secrets": ["whsec_b3RoZXI="]},'
            ' {"name": "a", "url": "http://y", "secrets": ["whsec_b3RoZXI="]}]',
            "unique",
        ),
    ],
)
def test_bad_endpoint_settings_are_named_without_echoing_secrets(raw: str, problem: str) -> None:
    with pytest.raises(EndpointsConfigError, match=problem) as err:
        parse_endpoints(raw)
    assert "CALLCENTER_WEBHOOK_ENDPOINTS" in str(err.value)
    assert "plain-secret" not in str(err.value) and "%%%" not in str(err.value)


def test_unset_endpoints_mean_none() -> None:
    assert parse_endpoints(None) == () == parse_endpoints("  ")


def test_backoff_grows_with_jitter_and_ends() -> None:
    schedule = (1.0, 10.0, 100.0)
    for attempts, base in ((1, 1.0), (2, 10.0), (3, 100.0)):
        assert base <= backoff_delay(attempts, schedule) <= base * 1.1
    assert backoff_delay(4, schedule) is None


def test_an_event_is_recorded_once_per_fact(store) -> None:
    at = datetime(2026, 12, 4, 12, tzinfo=UTC)
    first = record_event(store, EventType.CALL_ENDED, {"call_id": "c1"}, "call.ended/RM_1", at)
    again = record_event(store, EventType.CALL_ENDED, {"call_id": "c1"}, "call.ended/RM_1", at)
    assert first is not None and first.startswith("msg_") and again is None


def test_delivery_is_signed_and_verifies_with_the_standardwebhooks_verifier(store, subscriber) -> None:
    outbox = Outbox(store, [endpoint(subscriber.url)])
    at = datetime.now(UTC)
    mid = record_event(store, EventType.CALL_ANALYZED, {"call_id": "c1", "outcome": "answered"}, "k1", at)
    result = outbox.deliver_due()
    assert result.delivered == [f"{mid}@crm"]
    headers, body, _ = subscriber.received[0]
    payload = Webhook(SPEC_SECRET).verify(body, headers)
    assert headers["webhook-id"] == mid
    assert payload == {
        "type": "call.analyzed",
        "timestamp": at.isoformat(),
        "data": {"call_id": "c1", "outcome": "answered"},
    }
    # A tampered body or another secret is refused by the same verifier.
    with pytest.raises(WebhookVerificationError):
        Webhook(SPEC_SECRET).verify(body.replace(b"answered", b"voicemail"), headers)
    assert outbox.deliveries()[0].status is DeliveryStatus.DELIVERED
    assert outbox.deliver_due().delivered == []  # delivered once


def test_only_subscribed_events_are_sent(store, subscriber) -> None:
    outbox = Outbox(store, [endpoint(subscriber.url, events=(EventType.CAMPAIGN_PAUSED,))])
    now = datetime.now(UTC)
    record_event(store, EventType.CALL_STARTED, {"call_id": "c1"}, "a", now)
    paused = record_event(store, EventType.CAMPAIGN_PAUSED, {"campaign_id": "spring"}, "b", now)
    assert outbox.deliver_due().delivered == [f"{paused}@crm"]
    assert [json.loads(b)["type"] for b in subscriber.bodies()] == ["campaign.paused"]


class StepClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 12, 4, 12, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def test_a_failing_endpoint_is_retried_with_backoff_logged_then_given_up(store, subscriber) -> None:
    subscriber.statuses = [500, 503, 500]  # then 204 (never reached: the schedule has 2 retries)
    clock = StepClock()
    outbox = Outbox(store, [endpoint(subscriber.url)], backoff=(10.0, 100.0), clock=clock)
    mid = record_event(store, EventType.CAMPAIGN_FINISHED, {"campaign_id": "spring"}, "k", clock.now)

    assert outbox.deliver_due().retrying == [f"{mid}@crm"]
    (d,) = outbox.deliveries()
    assert d.status is DeliveryStatus.PENDING and d.attempts == 1 and d.last_status_code == 500
    wait = (d.next_attempt_at - clock.now).total_seconds()
    assert 10.0 <= wait <= 11.0
    clock.now += timedelta(seconds=5)
    assert outbox.deliver_due().retrying == []  # not due yet: nothing sent
    assert len(subscriber.received) == 1

    clock.now = d.next_attempt_at
    assert outbox.deliver_due().retrying == [f"{mid}@crm"]
    (d,) = outbox.deliveries()
    assert 100.0 <= (d.next_attempt_at - clock.now).total_seconds() <= 110.0

    clock.now = d.next_attempt_at
    assert outbox.deliver_due().failed == [f"{mid}@crm"]
    (d,) = outbox.deliveries()
    assert d.status is DeliveryStatus.FAILED and d.attempts == 3 and d.last_error == "HTTP 500"

    log = outbox.attempt_log(mid)
    assert [(a.attempt, a.status_code, a.replay) for a in log] == [(1, 500, False), (2, 503, False), (3, 500, False)]
    # Every retry carries the same webhook-id: the subscriber can deduplicate.
    assert {h["webhook-id"] for h, _, _ in subscriber.received} == {mid}


def test_an_unreachable_endpoint_is_retried_too(store) -> None:
    from tests.conftest import free_port

    outbox = Outbox(store, [endpoint(f"http://127.0.0.1:{free_port()}/down", timeout_s=2)], backoff=(1.0,))
    mid = record_event(store, EventType.CALL_STARTED, {"call_id": "c1"}, "k", datetime.now(UTC))
    assert outbox.deliver_due().retrying == [f"{mid}@crm"]
    (a,) = outbox.attempt_log(mid)
    assert a.status_code is None and "ConnectError" in (a.error or "")


def test_replay_from_the_cli_resends_the_same_webhook_id(store, subscriber, monkeypatch, capsys, tmp_path) -> None:
    # The CLI opens the ledger as the dialing CLI does: SQLite under CALLCENTER_DATA_DIR here.
    from orchestration.defs.dialing.ledger import SqliteDialStore
    from orchestration.defs.dialing.resources import LEDGER_FILENAME

    ledger = SqliteDialStore(tmp_path / LEDGER_FILENAME)
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CALLCENTER_DIALING_DSN", raising=False)
    monkeypatch.setenv(
        "CALLCENTER_WEBHOOK_ENDPOINTS", json.dumps([{"name": "crm", "url": subscriber.url, "secrets": [SPEC_SECRET]}])
    )
    subscriber.statuses = [500]
    outbox = Outbox(
        ledger,
        parse_endpoints(json.dumps([{"name": "crm", "url": subscriber.url, "secrets": [SPEC_SECRET]}])),
        backoff=(),
    )
    mid = record_event(ledger, EventType.CALL_ENDED, {"call_id": "c1"}, "k", datetime.now(UTC))
    assert outbox.deliver_due().failed == [f"{mid}@crm"]  # no retries configured: given up at once
    ledger.close()

    assert cli.main(["list", "--status", "failed"]) == 0
    assert mid in capsys.readouterr().out
    assert cli.main(["replay", mid]) == 0
    out = capsys.readouterr().out
    assert "delivered" in out

    first, second = subscriber.received
    assert first[0]["webhook-id"] == second[0]["webhook-id"] == mid
    assert first[1] == second[1]  # the same body
    assert Webhook(SPEC_SECRET).verify(second[1], second[0])["data"] == {"call_id": "c1"}

    assert cli.main(["show", mid]) == 0
    shown = capsys.readouterr().out
    assert "replay" in shown and "HTTP 500" in shown
    reopened = SqliteDialStore(tmp_path / LEDGER_FILENAME)
    try:
        (d,) = Outbox(reopened, []).deliveries(message_id=mid)
        assert d.status is DeliveryStatus.DELIVERED
    finally:
        reopened.close()


def test_replay_of_an_unknown_message_is_a_clear_error(monkeypatch, tmp_path, capsys) -> None:
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("CALLCENTER_DIALING_DSN", raising=False)
    monkeypatch.setenv("CALLCENTER_WEBHOOK_ENDPOINTS", "[]")
    assert cli.main(["replay", "msg_nope"]) == 2
    assert "no webhook message 'msg_nope'" in capsys.readouterr().err
