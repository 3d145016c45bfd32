"""A CSV export that fails says so: before the response starts, a 500 with a message; once rows
are on their way, the transfer is cut off (the client sees an error, never a short file that
looks complete)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import httpx
import pytest

from browser.main import create_app
from browser.queries import CallBrowserQueries
from callindex.sqlite import SqliteCallIndex
from tests.browser.conftest import local_settings
from tests.conftest import free_port, wait_for_port


class IndexGoesAway(SqliteCallIndex):
    """The real index until ``fail_from_offset``: from that page on, the database is gone."""

    fail_from_offset: int | None = None

    def list_calls(self, *args, offset: int = 0, **kw):
        if self.fail_from_offset is not None and offset >= self.fail_from_offset:
            raise OSError("database connection lost")
        return super().list_calls(*args, offset=offset, **kw)


def failing_app(index_path, embedder, gcs_emulator, fail_from_offset: int):
    index = IndexGoesAway(index_path)
    index.fail_from_offset = fail_from_offset
    settings = local_settings(index_path, gcs_emulator)
    return create_app(settings, queries=CallBrowserQueries(index, embedder=embedder))


@pytest.fixture
def serve() -> Iterator[Callable]:
    """The app under uvicorn on loopback (a real HTTP/1.1 transfer: an abort is visible there)."""
    import uvicorn

    servers = []

    def start(app) -> str:
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_for_port(port, timeout=30)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(10)


def test_an_export_whose_first_query_fails_is_a_500_not_an_empty_file(
    index_path, embedder, recordings_bucket, gcs_emulator
):
    from fastapi.testclient import TestClient

    app = failing_app(index_path, embedder, gcs_emulator, fail_from_offset=0)
    with TestClient(app, raise_server_exceptions=False) as client:
        r = client.get("/calls.csv")
    assert r.status_code == 500, (r.status_code, r.text)
    assert "Something went wrong" in r.text and "reference" in r.text


def test_an_export_that_fails_midway_is_cut_off_not_a_short_file(
    index_path, embedder, recordings_bucket, gcs_emulator, calls, serve, monkeypatch
):
    import browser.queries

    monkeypatch.setattr(browser.queries, "MAX_PAGE_SIZE", 2)  # rows leave in pages of two
    base = serve(failing_app(index_path, embedder, gcs_emulator, fail_from_offset=4))
    received = b""
    # the chunked body never ends
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", f"{base}/calls.csv", timeout=30) as r:
        assert r.status_code == 200  # the headers left before the failure
        for chunk in r.iter_bytes():
            received += chunk
    # What did arrive ends by saying it is incomplete, for anyone reading the file itself.
    assert received.rstrip().endswith(b"the export failed after 4 rows and is incomplete")


def test_a_whole_export_still_completes(index_path, embedder, recordings_bucket, gcs_emulator, calls, serve):
    base = serve(failing_app(index_path, embedder, gcs_emulator, fail_from_offset=10_000))
    r = httpx.get(f"{base}/calls.csv", timeout=30)
    assert r.status_code == 200 and len(r.text.strip().splitlines()) == len(calls) + 1
