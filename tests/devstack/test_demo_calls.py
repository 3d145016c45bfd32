"""Demo calls land in the emulated bucket in the production layout and are not rewritten."""

from __future__ import annotations

from datetime import UTC, datetime

import av
import pytest
from google.cloud import storage

from callcenter.bucket import open_client
from callcenter.paths import parse_object_name
from callcenter.report import Speaker, parse_report
from devstack.demo_calls import seed_bucket


@pytest.fixture
def bucket(gcs_emulator: str) -> storage.Bucket:
    client = open_client("local", gcs_emulator)
    return client.create_bucket(f"demo-{datetime.now(UTC):%H%M%S%f}")


def test_seeded_calls_follow_the_recordings_layout(bucket: storage.Bucket) -> None:
    now = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    written = seed_bucket(bucket, count=2, now=now)
    assert len(written) == 2

    names = sorted(b.name for b in bucket.list_blobs(prefix="recordings/"))
    parsed = [parse_object_name(n) for n in names]
    assert all(parsed), names
    assert {p.name for p in parsed} == {"audio.ogg", "session.json"}
    assert {p.call_id for p in parsed} == set(written)

    report_name = next(n for n in names if n.endswith("session.json"))
    report = parse_report(bucket.blob(report_name).download_as_bytes())
    assert report.recording_path == report_name.replace("session.json", "audio.ogg")
    assert report.turns[0].speaker is Speaker.AGENT and "automated" in report.turns[0].text
    assert all(t.end > t.start for t in report.turns)

    with av.open(bucket.blob(report.recording_path).open("rb")) as container:
        stream = container.streams.audio[0]
        assert (stream.codec_context.name, stream.channels) == ("opus", 2)
        duration = float(stream.duration * stream.time_base)
    assert duration == pytest.approx(report.turns[-1].end, abs=1.5)


def test_reseeding_skips_calls_already_present(bucket: storage.Bucket) -> None:
    now = datetime(2026, 11, 25, 23, 0, tzinfo=UTC)
    first = seed_bucket(bucket, count=1, now=now)
    generations = {b.name: b.generation for b in bucket.list_blobs()}
    assert seed_bucket(bucket, count=1, now=now) == []
    assert {b.name: b.generation for b in bucket.list_blobs()} == generations
    assert len(first) == 1
