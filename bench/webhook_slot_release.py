"""Bench: how soon a finished call's slot is free, from LiveKit's room_finished webhook.

    .venv/bin/python bench/webhook_slot_release.py [--calls 50]

The real livekit-server (loopback, its own Redis) posts its webhooks to the webhook service
(uvicorn on loopback, SQLite ledger). Per call: an outbound attempt is dispatched in the ledger,
its room created and then deleted through LiveKit's API; the clock runs from DeleteRoom's answer
to the attempt reading ``ended`` in the ledger (the slot is free). Without the webhook the slot
is freed when a dialing tick (every minute) finds the agent's session report in the bucket.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import uvicorn  # noqa: E402
from livekit import api  # noqa: E402

from callcenter.ids import new_call_id  # noqa: E402
from devstack.livekit import LocalLiveKit  # noqa: E402
from orchestration.defs.dialing.ledger import Attempt, AttemptStatus, SqliteDialStore, attempt_key  # noqa: E402
from orchestration.defs.webhooks.outbox import Outbox  # noqa: E402
from orchestration.defs.webhooks.service import create_app  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing on port {port}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=50)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    store = SqliteDialStore(work / "ledger.sqlite3")
    lk = LocalLiveKit(http_port=free_port(), rtc_tcp_port=free_port(), rtc_udp_port=free_port(), redis_port=free_port())
    receiver = api.WebhookReceiver(api.TokenVerifier(lk.api_key, lk.api_secret))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(store, receiver, Outbox(store, [])), host="127.0.0.1", port=port, log_level="warning")
    )
    threading.Thread(target=server.run, daemon=True).start()
    wait_for_port(port)
    config = lk.write_config(work / "livekit.yaml", webhook_urls=[f"http://127.0.0.1:{port}/livekit"])
    procs = []
    try:
        for svc in lk.services(config):
            procs.append(subprocess.Popen(svc.argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT))
            wait_for_port(svc.port)
        freed = asyncio.run(run(lk, store, args.calls))
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(10)
        server.should_exit = True
    freed_ms = sorted(x * 1000 for x in freed)
    print(
        f"{len(freed_ms)} calls: slot free {statistics.median(freed_ms):.0f} ms (median), "
        f"p90 {freed_ms[int(len(freed_ms) * 0.9) - 1]:.0f} ms, max {freed_ms[-1]:.0f} ms after DeleteRoom answered"
    )
    return 0


async def run(lk: LocalLiveKit, store: SqliteDialStore, calls: int) -> list[float]:
    freed = []
    async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as client:
        for i in range(calls):
            call_id = new_call_id()
            attempt = Attempt(
                f"att-{call_id[5:]}", attempt_key("bench", f"c-{i}", 1), "bench", f"c-{i}", 1, f"+1212555{i:04d}",
                call_id, AttemptStatus.RESERVED, datetime.now(UTC),
            )  # fmt: skip
            store.reserve(attempt)
            store.mark_sending(attempt.attempt_id)
            store.mark_dispatched(attempt.attempt_id, "AD_bench", datetime.now(UTC))
            await client.room.create_room(api.CreateRoomRequest(name=call_id))
            await client.room.delete_room(api.DeleteRoomRequest(room=call_id))
            t0 = time.perf_counter()
            while store.attempt_by_call(call_id).status is not AttemptStatus.ENDED:
                if time.perf_counter() - t0 > 30:
                    raise TimeoutError(f"{call_id} not freed in 30 s")
                await asyncio.sleep(0.002)
            freed.append(time.perf_counter() - t0)
    return freed


if __name__ == "__main__":
    sys.exit(main())
