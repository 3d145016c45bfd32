"""The call browser's replay pages: a stored replay read from the bucket (no Dagster), each call's
original and replay side by side, and a list filter turned into a replay's run config."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient

from browser.core.config import BrowserSettings
from browser.main import create_app
from browser.queries import CallBrowserQueries
from callcenter.bucket import Recordings, open_client
from callcenter.outcomes import CallOutcome
from callcenter.replay import ReplayResult, ReplaySettings, write_result
from callindex import EMBEDDING_DIM
from callindex.sqlite import SqliteCallIndex
from orchestration.defs.replay.comparison import compare, failed, side_of, summarize
from tests.browser.calls import sample_calls
from tests.replay.test_comparison import report

CARD = "four one one one one one one one one one one one one one one one"


@pytest.fixture(scope="module")
def stored(gcs_emulator: str, tmp_path_factory) -> tuple[BrowserSettings, ReplayResult]:
    name = f"replay-browser-{uuid.uuid4().hex[:8]}"
    open_client("local", gcs_emulator).create_bucket(name)
    original = report(caller=(f"my card is {CARD}",))
    replayed = report(caller=(f"my card is {CARD}",), recording=False, outcome=CallOutcome.TRANSFERRED, v2v=(1500.0,))
    rows = [
        compare(side_of(original, bucket_name=name), side_of(replayed, bucket_name="replay-scratch")),
        failed(report().call_id, "no agent joined the replay room within 30 s"),
    ]
    result = ReplayResult(
        replay_id=str(uuid.uuid4()),
        created_at=datetime.now(UTC),
        selection="chosen calls: 2 calls",
        settings=ReplaySettings(persona="plan_renewal"),
        summary=summarize(rows),
        rows=rows,
    )
    write_result(Recordings(name, "local", gcs_emulator), result)
    index_path = tmp_path_factory.mktemp("index") / "calls.db"
    with SqliteCallIndex(index_path) as index:
        index.upsert_many((r, [0.0] * EMBEDDING_DIM) for r, _ in sample_calls())
    settings = BrowserSettings(index_url=str(index_path), recordings_bucket=name, storage_emulator_host=gcs_emulator)
    return settings, result


@pytest.fixture
def client(stored) -> Iterator[TestClient]:
    settings, _ = stored
    app = create_app(settings, queries=CallBrowserQueries(SqliteCallIndex(settings.index_url)))
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_the_replay_list_shows_each_stored_replay_with_its_counts(client, stored) -> None:
    _, result = stored
    text = html.unescape(client.get("/replays").text)
    assert f'/replays/{result.replay_id}"' in text
    assert "persona=plan_renewal" in text and "chosen calls: 2 calls" in text


def test_a_replay_page_puts_original_and_replay_side_by_side(client, stored) -> None:
    _, result = stored
    r = client.get(f"/replays/{result.replay_id}")
    assert r.status_code == 200
    text = html.unescape(r.text)
    row, failed_row = result.rows
    assert text.count('class="card replay-call"') == 2
    assert "outcome changed" in text and "recording disclosed lost" in text
    assert '<span class="pill answered">' in text and '<span class="pill transferred">' in text
    assert "1,500 ms" in text  # the replay's per-reply latency next to the original's
    assert "no agent joined the replay room within 30 s" in text
    # the words are the stored, redacted ones: the card never reaches the page
    assert CARD not in text and text.count("my card is [REDACTED CARD]") == 2
    assert re.search(r"<h2>Original</h2>.*<h2>Replay</h2>", text, re.S)
    # both runs can be heard: the original from the recordings bucket, the replay from the scratch bucket
    players = re.findall(r'<audio class="replay-recording" controls preload="none" src="([^"]+)"', text)
    assert len(players) == 2
    assert f"/b/{stored[0].recordings_bucket}/o/" in players[0] and "/b/replay-scratch/o/" in players[1]


def test_unknown_and_malformed_replays_are_clear_errors(client) -> None:
    r = client.get(f"/replays/{uuid.uuid4()}")
    assert r.status_code == 404 and "no replay" in r.text
    assert client.get("/replays/..%2F..%2Fsecret").status_code in (400, 404)
    r = client.get("/replays/not a run id!")
    assert r.status_code == 400 and "not a replay id" in html.unescape(r.text)


def test_the_lists_filters_become_a_replays_run_config(client, stored) -> None:
    calls = [r for r, _ in sample_calls() if r.outcome is CallOutcome.ANSWERED]
    r = client.get("/replays/new", params={"outcome": "answered"})
    assert r.status_code == 200
    text = html.unescape(r.text)
    listed = re.findall(r"- (call-[0-9a-f-]{36})", text)
    assert sorted(listed) == sorted(c.call_id for c in calls) and listed
    assert "--select call_replays" in text
    r = client.get("/replays/new", params={"campaign": "no-such-campaign"})
    assert r.status_code == 400 and "nothing to replay" in html.unescape(r.text)


def test_the_call_list_links_its_filters_to_a_replay(client) -> None:
    text = html.unescape(client.get("/calls", params={"outcome": "answered"}).text)
    (link,) = re.findall(r'id="replay-calls" href="([^"]+)"', text)
    assert "/replays/new?" in link and "outcome=answered" in link
    r = client.get(link)
    assert r.status_code == 200 and "call_ids:" in r.text
