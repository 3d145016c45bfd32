"""Outbound webhooks: a durable outbox in the dial ledger's database, signed per Standard Webhooks.

Emitting is one committed INSERT (``record_event``) in whichever process knows the fact (the
LiveKit receiver, a dialing control, the post-call sensor); it needs no endpoint settings and
never waits on the network. The webhook service (``python -m orchestration.defs.webhooks serve``)
fans each new message out to the endpoints subscribed at that moment and delivers it, retrying
with exponential backoff; every attempt is logged. A message's ``webhook-id`` never changes, so
a receiver deduplicates retries and replays (``python -m orchestration.defs.webhooks.cli replay``).

Tables live beside the ledger's (SQLite locally, PostgreSQL on GKE) through ``DialStore``'s own
connection and transactions: one database layer. Payloads carry ids and outcomes, never PII.
"""

from __future__ import annotations

import binascii
import json
import logging
import random
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from standardwebhooks import Webhook

from orchestration.defs.dialing.ledger import DialStore

log = logging.getLogger(__name__)

ENDPOINTS_ENV = "CALLCENTER_WEBHOOK_ENDPOINTS"


class EventType(StrEnum):
    CALL_STARTED = "call.started"
    CALL_ENDED = "call.ended"
    CALL_ANALYZED = "call.analyzed"
    CAMPAIGN_PAUSED = "campaign.paused"
    CAMPAIGN_FINISHED = "campaign.finished"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # due at next_attempt_at
    DELIVERED = "delivered"  # a 2xx came back
    FAILED = "failed"  # retries exhausted: only a replay sends it again


# Standard Webhooks' suggested schedule, shortened at the tail: then the delivery is failed.
DEFAULT_BACKOFF = (5.0, 30.0, 120.0, 600.0, 1800.0, 3600.0, 3 * 3600.0, 6 * 3600.0)

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS webhook_messages (
        message_id TEXT PRIMARY KEY, event_type TEXT NOT NULL, dedupe_key TEXT NOT NULL UNIQUE,
        body TEXT NOT NULL, created_at DOUBLE PRECISION NOT NULL, fanned_out BOOLEAN NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS webhook_deliveries (
        message_id TEXT NOT NULL, endpoint TEXT NOT NULL, status TEXT NOT NULL, attempts INTEGER NOT NULL,
        next_attempt_at DOUBLE PRECISION NOT NULL, last_status_code INTEGER, last_error TEXT,
        delivered_at DOUBLE PRECISION, PRIMARY KEY (message_id, endpoint))""",
    "CREATE INDEX IF NOT EXISTS webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at)",
    "CREATE INDEX IF NOT EXISTS webhook_messages_fan_out ON webhook_messages (fanned_out, created_at)",
    # The delivery log: one row per HTTP attempt, replays included.
    """CREATE TABLE IF NOT EXISTS webhook_attempts (
        message_id TEXT NOT NULL, endpoint TEXT NOT NULL, attempt INTEGER NOT NULL, at DOUBLE PRECISION NOT NULL,
        status_code INTEGER, error TEXT, duration_ms DOUBLE PRECISION NOT NULL, replay BOOLEAN NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS webhook_attempts_message ON webhook_attempts (message_id, at)",
]


def migrate(store: DialStore) -> None:
    """Create the outbox tables once per open store (the ledger's own ``migrate`` creates its tables)."""
    if getattr(store, "_webhook_tables", False):
        return
    with store.transaction() as cur:
        if store.engine == "postgres":
            cur.execute("SELECT pg_advisory_xact_lock(7008)")  # concurrent CREATE IF NOT EXISTS can race
        for stmt in SCHEMA:
            cur.execute(stmt)
    store._webhook_tables = True  # type: ignore[attr-defined]


# --- endpoints -------------------------------------------------------------------------


class WebhookEndpoint(BaseModel):
    """One subscriber. ``secrets``: every ``whsec_`` secret signs each request (rotation: add the
    new one, let the receiver switch, remove the old one); ``events``: None means all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    url: str = Field(pattern=r"^https?://\S+$")
    secrets: tuple[str, ...] = Field(min_length=1)
    events: tuple[EventType, ...] | None = None
    timeout_s: float = Field(10.0, gt=0, le=60)

    @field_validator("secrets")
    @classmethod
    def _secrets_decode(cls, secrets: tuple[str, ...]) -> tuple[str, ...]:
        for i, secret in enumerate(secrets):
            if not secret.startswith("whsec_"):
                raise ValueError(f"secret #{i + 1} must start with whsec_ (base64 after the prefix)")
            try:
                Webhook(secret)
            except (binascii.Error, ValueError, Exception) as e:  # never echo the secret itself
                raise ValueError(f"secret #{i + 1} is not valid base64 after whsec_ ({type(e).__name__})") from None
        return secrets

    def wants(self, event_type: str) -> bool:
        return self.events is None or event_type in self.events

    def sign(self, message_id: str, at: datetime, body: str) -> str:
        """The ``webhook-signature`` header: one ``v1,<base64>`` per secret, space-separated."""
        return " ".join(Webhook(s).sign(message_id, at, body) for s in self.secrets)


class EndpointsConfigError(ValueError):
    pass


def parse_endpoints(raw: str | None) -> tuple[WebhookEndpoint, ...]:
    """``CALLCENTER_WEBHOOK_ENDPOINTS``: a JSON list of endpoints (empty or unset: none)."""
    if not raw or not raw.strip():
        return ()
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as e:
        raise EndpointsConfigError(f"{ENDPOINTS_ENV} is not JSON: {e.msg} at position {e.pos}") from None
    if not isinstance(items, list):
        raise EndpointsConfigError(f"{ENDPOINTS_ENV} must be a JSON list of endpoints")
    endpoints = []
    for i, item in enumerate(items):
        try:
            endpoints.append(WebhookEndpoint.model_validate(item))
        except ValidationError as e:
            # pydantic's message would quote the input (the secrets): name the fields only.
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise EndpointsConfigError(f"{ENDPOINTS_ENV} endpoint #{i + 1}: {problems}") from None
    names = [e.name for e in endpoints]
    if len(set(names)) != len(names):
        raise EndpointsConfigError(f"{ENDPOINTS_ENV}: endpoint names must be unique, got {names}")
    return tuple(endpoints)


# --- emitting --------------------------------------------------------------------------


def new_message_id() -> str:
    return f"msg_{uuid.uuid4().hex}"


def event_body(event_type: EventType, data: dict[str, Any], at: datetime) -> str:
    """The Standard Webhooks payload shape: type, timestamp, data."""
    return json.dumps(
        {"type": event_type.value, "timestamp": at.astimezone(UTC).isoformat(), "data": data},
        separators=(",", ":"),
        sort_keys=True,
    )


def record_event(
    store: DialStore, event_type: EventType, data: dict[str, Any], dedupe_key: str, at: datetime
) -> str | None:
    """Put one event in the outbox; its message id, or None when ``dedupe_key`` was recorded before
    (LiveKit retrying a webhook, a partition materialised twice: the subscriber hears it once)."""
    migrate(store)
    message_id = new_message_id()
    with store.transaction() as cur:
        row = store.execute(
            cur,
            "INSERT INTO webhook_messages (message_id, event_type, dedupe_key, body, created_at, fanned_out) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING message_id",
            (message_id, event_type.value, dedupe_key, event_body(event_type, data, at), at.timestamp(), False),
        ).fetchone()
    return row[0] if row else None


def fan_out(store: DialStore, endpoints: Sequence[WebhookEndpoint], now: datetime, batch: int = 500) -> int:
    """Give each new message a delivery row per subscribed endpoint; returns messages fanned out.
    Without endpoints nothing is fanned out: messages wait for the first one to be configured."""
    if not endpoints:
        return 0
    with store.transaction() as cur:
        rows = store.execute(
            cur,
            "SELECT message_id, event_type FROM webhook_messages WHERE fanned_out = ? ORDER BY created_at LIMIT ?",
            (False, batch),
        ).fetchall()
        for message_id, event_type in rows:
            for ep in endpoints:
                if ep.wants(event_type):
                    store.execute(
                        cur,
                        "INSERT INTO webhook_deliveries (message_id, endpoint, status, attempts, next_attempt_at) "
                        "VALUES (?, ?, ?, 0, ?) ON CONFLICT DO NOTHING",
                        (message_id, ep.name, DeliveryStatus.PENDING.value, now.timestamp()),
                    )
            store.execute(cur, "UPDATE webhook_messages SET fanned_out = ? WHERE message_id = ?", (True, message_id))
    return len(rows)


# --- delivering ------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    message_id: str
    event_type: str
    body: str
    created_at: datetime


@dataclass(frozen=True)
class Delivery:
    message_id: str
    endpoint: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    event_type: str


@dataclass(frozen=True)
class AttemptLog:
    message_id: str
    endpoint: str
    attempt: int
    at: datetime
    status_code: int | None
    error: str | None
    duration_ms: float
    replay: bool


@dataclass
class DeliveryRound:
    delivered: list[str] = field(default_factory=list)  # "<message_id>@<endpoint>"
    retrying: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def backoff_delay(attempts: int, schedule: Sequence[float], rng: random.Random | None = None) -> float | None:
    """Seconds until retry after ``attempts`` failed attempts (+0-10% jitter, so a recovering
    endpoint is not hit by every queued message at once); None when the schedule is exhausted."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * (1 + (rng or random).random() * 0.1)


def send(
    endpoint: WebhookEndpoint, message: Message, client: httpx.Client, now: datetime
) -> tuple[int | None, str | None]:
    """One signed POST: (status code, error); the error is None on a 2xx."""
    headers = {
        "content-type": "application/json",
        "webhook-id": message.message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": endpoint.sign(message.message_id, now, message.body),
    }
    try:
        response = client.post(endpoint.url, content=message.body.encode(), headers=headers, timeout=endpoint.timeout_s)
    except httpx.HTTPError as e:
        return None, f"{type(e).__name__}: {str(e)[:200]}"
    if 200 <= response.status_code < 300:
        return response.status_code, None
    return response.status_code, f"HTTP {response.status_code}"


class Outbox:
    """Fan-out, delivery, retries, replay and the log over one ledger store."""

    def __init__(
        self,
        store: DialStore,
        endpoints: Sequence[WebhookEndpoint],
        client: httpx.Client | None = None,
        backoff: Sequence[float] = DEFAULT_BACKOFF,
        clock=lambda: datetime.now(UTC),  # noqa: ANN001
    ):
        self.store, self.backoff, self.clock = store, tuple(backoff), clock
        self.endpoints = {e.name: e for e in endpoints}
        self.client = client or httpx.Client(follow_redirects=False)
        migrate(store)

    # --- reads --------------------------------------------------------------------------
    def message(self, message_id: str) -> Message | None:
        with self.store.transaction() as cur:
            row = self.store.execute(
                cur,
                "SELECT message_id, event_type, body, created_at FROM webhook_messages WHERE message_id = ?",
                (message_id,),
            ).fetchone()
        return Message(row[0], row[1], row[2], _dt(row[3])) if row else None  # type: ignore[arg-type]

    def deliveries(
        self, status: DeliveryStatus | None = None, message_id: str | None = None, limit: int = 100
    ) -> list[Delivery]:
        where, params = [], []
        if status is not None:
            where.append("d.status = ?")
            params.append(status.value)
        if message_id is not None:
            where.append("d.message_id = ?")
            params.append(message_id)
        sql = (
            "SELECT d.message_id, d.endpoint, d.status, d.attempts, d.next_attempt_at, d.last_status_code, d.last_error, "
            "d.delivered_at, m.event_type FROM webhook_deliveries d JOIN webhook_messages m ON m.message_id = d.message_id"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + " ORDER BY m.created_at DESC, d.endpoint LIMIT ?"
        )
        with self.store.transaction() as cur:
            rows = self.store.execute(cur, sql, (*params, limit)).fetchall()
        return [
            Delivery(r[0], r[1], DeliveryStatus(r[2]), int(r[3]), _dt(r[4]), r[5], r[6], _dt(r[7]), r[8])  # type: ignore[arg-type]
            for r in rows
        ]

    def attempt_log(self, message_id: str) -> list[AttemptLog]:
        with self.store.transaction() as cur:
            rows = self.store.execute(
                cur,
                "SELECT message_id, endpoint, attempt, at, status_code, error, duration_ms, replay FROM webhook_attempts "
                "WHERE message_id = ? ORDER BY at, endpoint",
                (message_id,),
            ).fetchall()
        return [AttemptLog(r[0], r[1], int(r[2]), _dt(r[3]), r[4], r[5], float(r[6]), bool(r[7])) for r in rows]  # type: ignore[arg-type]

    # --- writes -------------------------------------------------------------------------
    def _log_attempt(self, cur: Any, message_id: str, endpoint: str, attempt: int, at: datetime,
                     code: int | None, error: str | None, ms: float, replay: bool) -> None:  # fmt: skip
        self.store.execute(
            cur,
            "INSERT INTO webhook_attempts (message_id, endpoint, attempt, at, status_code, error, duration_ms, replay) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (message_id, endpoint, attempt, at.timestamp(), code, error, ms, replay),
        )

    def _claim(self, message_id: str, endpoint: str, now: datetime, hold_s: float) -> bool:
        """Take a due delivery for ``hold_s`` (two webhook service replicas never send it at once)."""
        with self.store.transaction() as cur:
            return (
                self.store.execute(
                    cur,
                    "UPDATE webhook_deliveries SET next_attempt_at = ? WHERE message_id = ? AND endpoint = ? "
                    "AND status = ? AND next_attempt_at <= ? RETURNING message_id",
                    (now.timestamp() + hold_s, message_id, endpoint, DeliveryStatus.PENDING.value, now.timestamp()),
                ).fetchone()
                is not None
            )

    def deliver_due(self, limit: int = 100) -> DeliveryRound:
        """Fan out new messages, then send every due delivery once."""
        now = self.clock()
        fan_out(self.store, list(self.endpoints.values()), now)
        with self.store.transaction() as cur:
            due = self.store.execute(
                cur,
                "SELECT d.message_id, d.endpoint, d.attempts FROM webhook_deliveries d WHERE d.status = ? "
                "AND d.next_attempt_at <= ? ORDER BY d.next_attempt_at LIMIT ?",
                (DeliveryStatus.PENDING.value, now.timestamp(), limit),
            ).fetchall()
        result = DeliveryRound()
        for message_id, endpoint_name, attempts in due:
            endpoint = self.endpoints.get(endpoint_name)
            if endpoint is None:
                continue  # removed from the settings: it stays pending, replayable, until it returns
            if not self._claim(message_id, endpoint_name, now, endpoint.timeout_s + 30):
                continue
            message = self.message(message_id)
            assert message is not None
            self._attempt(endpoint, message, int(attempts) + 1, result)
        return result

    def _attempt(self, endpoint: WebhookEndpoint, message: Message, attempt: int, result: DeliveryRound) -> None:
        sent_at = self.clock()
        started = time.perf_counter()
        code, error = send(endpoint, message, self.client, sent_at)
        ms = (time.perf_counter() - started) * 1000
        key = f"{message.message_id}@{endpoint.name}"
        with self.store.transaction() as cur:
            self._log_attempt(cur, message.message_id, endpoint.name, attempt, sent_at, code, error, ms, False)
            if error is None:
                status, next_at = DeliveryStatus.DELIVERED, sent_at
                result.delivered.append(key)
            else:
                delay = backoff_delay(attempt, self.backoff)
                if delay is None:
                    status, next_at = DeliveryStatus.FAILED, sent_at
                    result.failed.append(key)
                    log.warning(
                        "webhook %s to %s failed after %d attempts: %s",
                        message.message_id,
                        endpoint.name,
                        attempt,
                        error,
                    )
                else:
                    status, next_at = DeliveryStatus.PENDING, sent_at + timedelta(seconds=delay)
                    result.retrying.append(key)
            self.store.execute(
                cur,
                "UPDATE webhook_deliveries SET status = ?, attempts = ?, next_attempt_at = ?, last_status_code = ?, "
                "last_error = ?, delivered_at = ? WHERE message_id = ? AND endpoint = ?",
                (
                    status.value, attempt, next_at.timestamp(), code, error,
                    sent_at.timestamp() if error is None else None, message.message_id, endpoint.name,
                ),
            )  # fmt: skip

    def replay(self, message_id: str, endpoint_names: Sequence[str] | None = None) -> list[AttemptLog]:
        """Send a message again now, with its own webhook-id and body (a fresh timestamp and
        signature), to the named endpoints or to every endpoint it was delivered to. Logged
        as a replay; a success marks the delivery delivered, a failure leaves its state alone."""
        message = self.message(message_id)
        if message is None:
            raise KeyError(f"no webhook message {message_id!r} in the delivery log")
        names = list(endpoint_names or [d.endpoint for d in self.deliveries(message_id=message_id)])
        if not names:
            raise KeyError(f"message {message_id} has no deliveries yet: name an endpoint with --endpoint")
        unknown = [n for n in names if n not in self.endpoints]
        if unknown:
            raise KeyError(f"endpoints not configured in {ENDPOINTS_ENV}: {', '.join(unknown)}")
        logs = []
        for name in names:
            endpoint = self.endpoints[name]
            sent_at = self.clock()
            started = time.perf_counter()
            code, error = send(endpoint, message, self.client, sent_at)
            ms = (time.perf_counter() - started) * 1000
            with self.store.transaction() as cur:
                row = self.store.execute(
                    cur,
                    "SELECT COALESCE(MAX(attempt), 0) FROM webhook_attempts WHERE message_id = ? AND endpoint = ?",
                    (message_id, name),
                ).fetchone()
                attempt = int(row[0]) + 1
                self._log_attempt(cur, message_id, name, attempt, sent_at, code, error, ms, True)
                self.store.execute(
                    cur,
                    "INSERT INTO webhook_deliveries (message_id, endpoint, status, attempts, next_attempt_at, "
                    "last_status_code, last_error, delivered_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT (message_id, endpoint) DO UPDATE SET last_status_code = excluded.last_status_code, "
                    "last_error = excluded.last_error, attempts = excluded.attempts"
                    + (", status = excluded.status, delivered_at = excluded.delivered_at" if error is None else ""),
                    (
                        message_id, name,
                        (DeliveryStatus.DELIVERED if error is None else DeliveryStatus.FAILED).value,
                        attempt, sent_at.timestamp(), code, error, sent_at.timestamp() if error is None else None,
                    ),
                )  # fmt: skip
            logs.append(AttemptLog(message_id, name, attempt, sent_at, code, error, ms, True))
        return logs
