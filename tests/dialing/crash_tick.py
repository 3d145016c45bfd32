"""Runs one dialing tick in a child process and SIGKILLs it at a chosen point (tests only).

    python -m tests.dialing.crash_tick <ledger-json> <campaigns-dir> <livekit-url> <key> <secret> <before|after>

``before``:  killed after the attempt row is committed, before it is marked as sending.
``sending``: killed after it is marked as sending, before CreateDispatch reaches LiveKit.
``after``:   killed after LiveKit created the dispatch, before the ledger recorded it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

from livekit import api

from callcenter.campaign import load_catalog
from orchestration.defs.dialing.dialer import DialingTick, TickSettings
from tests.dialing.conftest import open_target


async def main() -> None:
    target, campaigns_dir, url, key, secret, when, now = sys.argv[1:8]
    store = open_target(json.loads(target))
    clock_now = datetime.fromisoformat(now).astimezone(UTC)
    async with api.LiveKitAPI(url, key, secret) as lk:
        real_create = lk.agent_dispatch.create_dispatch

        async def create_then_maybe_die(req):  # noqa: ANN001, ANN202
            if when == "sending":
                os.kill(os.getpid(), signal.SIGKILL)
            result = await real_create(req)
            os.kill(os.getpid(), signal.SIGKILL)
            return result

        lk.agent_dispatch.create_dispatch = create_then_maybe_die
        if when == "before":
            store.mark_sending = lambda _attempt_id: os.kill(os.getpid(), signal.SIGKILL)
        tick = DialingTick(
            store,
            load_catalog(Path(campaigns_dir)),
            lk,
            lambda _n: None,
            TickSettings(global_limit=10),
            lambda: clock_now,
        )
        await tick.run()


if __name__ == "__main__":
    asyncio.run(main())
