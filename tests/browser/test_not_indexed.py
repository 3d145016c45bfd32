"""Calls post-call has not indexed show in the browser: pending, or "unreadable report" with its
reason (error type and location, never the input); the call id, day and reason only (issue 22,
items 3 and 5)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient

from browser.main import create_app
from browser.queries import CallBrowserQueries
from callindex import UnindexedCall, UnindexedState
from callindex.sqlite import SqliteCallIndex
from tests.browser.conftest import local_settings

SINCE = datetime(2026, 11, 24, 9, 30, tzinfo=UTC)
UNREADABLE_ID = "call-019ab3f0-6a40-7000-8000-00000000a001"
PENDING_ID = "call-019ab3f0-6a40-7000-8000-00000000a002"


def _unindexed(call_id: str, state: UnindexedState, reason: str, minutes: int = 0) -> UnindexedCall:
    return UnindexedCall(
        call_id=call_id,
        day=SINCE.date(),
        state=state,
        reason=reason,
        since=SINCE + timedelta(minutes=minutes),
        generation=7,
    )


UNREADABLE = _unindexed(
    UNREADABLE_ID,
    UnindexedState.UNREADABLE,
    "session report is not a valid SessionReport: literal_error at schema_version",
    minutes=5,
)
PENDING = _unindexed(PENDING_ID, UnindexedState.PENDING, "requested 2026-11-24 09:30 UTC, run failure")


@pytest.fixture
def small_index(tmp_path, calls, embedder):
    """Three sample calls (the list is not what this is about) and two calls not indexed."""
    path = tmp_path / "calls.db"
    with SqliteCallIndex(path) as index:
        some = [r for r, _ in calls[:3]]
        index.upsert_many(zip(some, embedder.embed([r.embedding_text() for r in some]), strict=True))
        index.mark_unindexed([UNREADABLE, PENDING])
    return path


@pytest.fixture
def client(small_index, embedder, gcs_emulator):
    settings = local_settings(small_index, gcs_emulator)
    app = create_app(settings, queries=CallBrowserQueries(SqliteCallIndex(small_index), embedder=embedder))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _section(html: str) -> str:
    found = re.search(r'<section class="card" id="not-indexed".*?</section>', html, re.S)
    assert found, "no 'Not indexed yet' section"
    return unescape(found.group(0))


def test_an_unreadable_report_shows_on_the_call_list_with_its_reason(client: TestClient, small_index) -> None:
    r = client.get("/calls")
    assert r.status_code == 200
    section = _section(r.text)
    assert 'aria-labelledby="not-indexed-heading"' in section and ">Not indexed yet</h2>" in section
    assert "2 calls not indexed yet: 1 pending, 1 unreadable report" in section
    rows = re.findall(r'<tr class="not-indexed-row" data-state="(\w+)">(.*?)</tr>', section, re.S)
    assert [state for state, _ in rows] == ["pending", "unreadable"]  # longest waiting first
    unreadable = rows[1][1]
    assert UNREADABLE_ID in unreadable and "2026-11-24" in unreadable and "unreadable report" in unreadable
    assert "literal_error at schema_version" in unreadable
    assert '<time datetime="2026-11-24T09:35:00+00:00">2026-11-24 09:35:00</time>' in unreadable
    assert PENDING_ID in rows[0][1] and "run failure" in rows[0][1]
    # Not a link to a call page: there is no indexed call to show.
    assert f"/calls/{UNREADABLE_ID}" not in r.text

    # Indexed at last (its batch ran again): it leaves the list.
    with SqliteCallIndex(small_index) as index:
        record = index.list_calls(limit=1).items[0]
        indexed = record.model_copy(update={"call_id": PENDING_ID, "source_generation": 7})
        index.upsert(indexed, index.get_embedding(record.call_id))
    section = _section(client.get("/calls").text)
    assert PENDING_ID not in section and "1 call not indexed yet: 1 unreadable report" in section


def test_the_not_indexed_page_filters_by_state_and_refuses_bad_parameters(client: TestClient) -> None:
    page = unescape(client.get("/not-indexed").text)
    assert "<caption>Calls not indexed yet, longest waiting first</caption>" in page
    assert page.count('<th scope="col">') == 5
    assert UNREADABLE_ID in page and PENDING_ID in page
    only = unescape(client.get("/not-indexed?state=unreadable").text)
    assert UNREADABLE_ID in only and PENDING_ID not in only
    assert 'aria-current="page">unreadable report (1)' in only
    bad = client.get("/not-indexed?state=lost")
    assert bad.status_code == 400 and "state must be one of pending, unreadable, failed" in unescape(bad.text)
    assert client.get("/not-indexed?sort=since").status_code == 400
    assert client.get("/not-indexed?page=0").status_code == 400


def test_the_dashboard_counts_them(client: TestClient) -> None:
    r = client.get("/dashboard")
    assert r.status_code == 200
    stat = re.search(r'id="stat-not-indexed"><a href="[^"]*/not-indexed">([\d,]+)</a>', r.text)
    assert stat and stat.group(1) == "2"
    assert "1 pending, 1 unreadable report" in r.text


def test_nothing_not_indexed_means_no_section(make_client) -> None:
    r = make_client().get("/calls")  # the sample index: every call indexed
    assert r.status_code == 200 and 'id="not-indexed"' not in r.text
