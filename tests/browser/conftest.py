"""The browser's fixtures: a real SQLite call index holding the sample calls (real embeddings),
and the recordings bucket in the real GCS emulator (session reports; audio for end-to-end)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from browser.core.config import BrowserSettings
from browser.main import create_app
from browser.queries import CallBrowserQueries
from callcenter.bucket import open_client
from callindex.embeddings import CallEmbedder
from callindex.sqlite import SqliteCallIndex
from tests.browser.calls import BUCKET, sample_calls, session_report_json


@pytest.fixture(scope="session")
def embedder() -> CallEmbedder:
    return CallEmbedder()


@pytest.fixture(scope="session")
def calls():
    return sample_calls()


@pytest.fixture(scope="session")
def index_path(tmp_path_factory, calls, embedder) -> Path:
    path = tmp_path_factory.mktemp("callindex") / "calls.db"
    with SqliteCallIndex(path) as index:
        vectors = embedder.embed([r.embedding_text() for r, _ in calls])
        index.upsert_many((r, v) for (r, _), v in zip(calls, vectors, strict=True))
    return path


@pytest.fixture(scope="session")
def recordings_bucket(gcs_emulator, calls) -> str:
    """Session reports (with per-turn latency and raw turns) for every call, in the emulator."""
    client = open_client("local", gcs_emulator)
    bucket = client.bucket(BUCKET)
    if not bucket.exists():
        bucket = client.create_bucket(BUCKET)
    for record, latency in calls:
        if record.recording_path:
            name = record.recording_path.rsplit("/", 1)[0] + "/session.json"
            bucket.blob(name).upload_from_string(
                json.dumps(session_report_json(record, latency)), content_type="application/json"
            )
    return BUCKET


def local_settings(index_path: Path, emulator: str | None, **kw) -> BrowserSettings:
    values = {"index_url": str(index_path), "recordings_bucket": BUCKET, "storage_emulator_host": emulator}
    return BrowserSettings(**(values | kw))


@pytest.fixture
def make_client(index_path, embedder, recordings_bucket, gcs_emulator):
    """A TestClient factory over the sample index; settings overrides as keyword arguments."""
    opened: list[TestClient] = []

    def make(**kw) -> TestClient:
        settings = local_settings(index_path, gcs_emulator, **kw)
        queries = CallBrowserQueries(SqliteCallIndex(index_path), embedder=embedder)
        client = TestClient(create_app(settings, queries=queries), raise_server_exceptions=False)
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client) -> Iterator[TestClient]:
    return make_client()
