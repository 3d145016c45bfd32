"""Webhook fixtures: the ledger on both engines (the dialing tests' fixtures), a subscriber that
records what it is sent, and servers on loopback."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from tests.conftest import free_port
from tests.dialing.conftest import bucket, clock, ledger_target, postgres_uri, sqlite_store, store  # noqa: F401  (fixtures)


def serve(app: FastAPI) -> tuple[uvicorn.Server, threading.Thread, int]:
    """A real uvicorn on a loopback port, in a thread; stop with ``server.should_exit = True``."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    return server, thread, port


def stop(server: uvicorn.Server, thread: threading.Thread) -> None:
    server.should_exit = True
    thread.join(10)


@dataclass
class Subscriber:
    """A customer's webhook endpoint: records every request; answers ``statuses`` in turn, then 204."""

    url: str
    received: list[tuple[dict[str, str], bytes, float]] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)

    def bodies(self) -> list[bytes]:
        return [b for _, b, _ in self.received]


@pytest.fixture
def subscriber() -> Iterator[Subscriber]:
    app = FastAPI()
    sub = Subscriber(url="")

    @app.post("/hook")
    async def hook(request: Request) -> Response:
        sub.received.append((dict(request.headers), await request.body(), time.monotonic()))
        return Response(status_code=sub.statuses.pop(0) if sub.statuses else 204)

    server, thread, port = serve(app)
    sub.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield sub
    finally:
        stop(server, thread)
