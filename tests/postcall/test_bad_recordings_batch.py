"""One oversized or corrupt recording fails its own call, never the day's batch (issue 16, item 7).

A batch of three calls through the real assets (GCS emulator, SQLite index): one good, one whose
recording is not audio, one whose recording runs past the longest call allowed. The good call
is indexed from its recording; the other two are indexed from the agent's live transcript with
their recording's problem as the reason, named by the asset checks; the run succeeds. The STT
is a local double (the words do not matter here, the flow does); the limits are lowered so an
"oversized" recording is minutes, not hours, of audio.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pytest

from callcenter.audio import encode_ogg_opus
from callcenter.ids import new_call_id
from callcenter.paths import audio_path, report_path
from callcenter.record import TranscriptSource
from callindex import open_call_index
from doubles.llm_server import ScriptedLLM
from orchestration.defs.postcall import call_analyses, call_index, call_transcripts, transcription
from orchestration.defs.postcall.audio import STT_RATE
from orchestration.defs.postcall.resources import CallIndexResource
from orchestration.defs.postcall.speech import SpeechSegment, SpeechToText
from tests.postcall.conftest import postcall_resources, upload_call

pytestmark = [pytest.mark.xdist_group("postcall"), pytest.mark.timeout(300)]

DAY = "2026-11-24"


class CountingSpeechToText(SpeechToText):
    """Says one long segment per chunk it is given (more words than the live transcript, so the
    recording's transcript is the one kept); remembers how much audio it was handed."""

    def transcribe(self, samples: np.ndarray) -> list[SpeechSegment]:
        _HEARD.append(len(samples) / STT_RATE)
        if samples.size == 0:
            return []
        return [SpeechSegment(0.1, min(1.0, len(samples) / STT_RATE), " ".join(["appointment"] * 200))]


_HEARD: list[float] = []


def _copy_as_new_call(call, started_at: datetime):
    call_id = new_call_id(started_at)
    report = call.report.model_copy(update={"call_id": call_id, "room": call_id, "recording_path": audio_path(call_id)})
    return type(call)(report, audio_path(call_id), report_path(call_id), call.audio)


@pytest.fixture
def scripted_llm():
    llm = ScriptedLLM().start()
    try:
        yield llm
    finally:
        llm.stop()


def test_a_corrupt_and_an_oversized_recording_fail_their_own_calls(
    bucket, tmp_path, render_demo_call, scripted_llm, monkeypatch
) -> None:
    good = render_demo_call("wrong_number", datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    corrupt = _copy_as_new_call(good, datetime(2026, 11, 24, 9, 10, tzinfo=UTC))
    oversized = _copy_as_new_call(good, datetime(2026, 11, 24, 9, 20, tzinfo=UTC))
    limit_s = good.report.duration_s + 30  # the longest call allowed, lowered for the test
    monkeypatch.setattr(transcription, "MAX_RECORDING_S", limit_s)
    # a runaway recording: twice the limit of near-silence, a small file (under the byte limit)
    quiet = (np.random.default_rng(1).standard_normal((int(2 * limit_s * 16_000), 2)) * 0.001).astype(np.float32)
    long_audio = encode_ogg_opus(quiet, 16_000)
    assert len(long_audio) < transcription.MAX_RECORDING_BYTES
    upload_call(bucket, good)
    upload_call(bucket, corrupt, audio=b"OggS" + bytes(range(256)) * 200)  # an Ogg page header, then noise
    upload_call(bucket, oversized, audio=long_audio)
    _HEARD.clear()

    # the analysis is not what this test is about: the scripted model answers no JSON, so each
    # analysed call is recorded as "analysis failed", which is indexed all the same
    resources = postcall_resources(bucket, CountingSpeechToText(), scripted_llm.base_url, tmp_path)
    result = dg.materialize(
        [call_transcripts, call_analyses, call_index],
        partition_key=DAY,
        resources=resources,
        run_config={"ops": {"call_transcripts": {"config": {"calls": []}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success  # the batch went through

    # no STT past the limit: the runaway recording stopped decoding there, before any STT
    assert sum(_HEARD) < 2 * (good.report.duration_s + 5)

    transcripts = result.output_for_node("call_transcripts")
    assert "not a readable audio file" in transcripts[corrupt.report.call_id].recording_problem
    assert "longer than a call may last" in transcripts[oversized.report.call_id].recording_problem
    assert transcripts[good.report.call_id].recording_problem is None

    index = open_call_index(CallIndexResource(data_dir=str(tmp_path)).resolved_url())
    try:
        assert index.count() == 3
        rec = index.get(good.report.call_id)
        assert rec.transcript_source is TranscriptSource.RECORDING and rec.failure_reason is None
        for bad, reason in ((corrupt, "not a readable audio file"), (oversized, "longer than a call may last")):
            row = index.get(bad.report.call_id)
            assert reason in (row.failure_reason or "")
            assert row.transcript_source is TranscriptSource.LIVE  # the agent's transcript still serves
    finally:
        index.close()

    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    present = checks["recording_present"]
    assert not present.passed
    details = present.metadata["details"].value
    assert set(details) == {corrupt.report.call_id, oversized.report.call_id}
    assert "longer than a call may last" in details[oversized.report.call_id]


def test_an_object_over_the_byte_limit_is_not_downloaded_whole(bucket, render_demo_call, monkeypatch) -> None:
    from callcenter.redaction import RedactionPolicy
    from orchestration.defs.postcall.assets import _reader
    from orchestration.defs.postcall.calls import CallRef

    call = render_demo_call("wrong_number", datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    big = _copy_as_new_call(call, datetime(2026, 11, 24, 9, 30, tzinfo=UTC))
    upload_call(bucket, big, audio=b"\0" * 300_000)
    monkeypatch.setattr(transcription, "MAX_RECORDING_BYTES", 100_000)
    read = _reader(bucket)
    assert len(read(big.audio_object)) == 100_001  # a ranged read: one byte past the limit, no more
    ref = CallRef(big.report_object, int(bucket.bucket.get_blob(big.report_object).generation))
    result = transcription.transcribe_call(ref, read, CountingSpeechToText(), RedactionPolicy())
    assert "not transcribed" in result.recording_problem and "MiB" in result.recording_problem
    assert result.chosen is TranscriptSource.LIVE and result.failure is None


def test_no_call_the_agent_may_hold_is_longer_than_post_call_transcribes() -> None:
    """The agent hangs up at MAX_CALL_DURATION_S (its ConfigMap); post-call's cap must not refuse such a call."""
    from callcenter.dispatch import MAX_CALL_DURATION_S
    from tests.manifests.render import find, render_overlay

    for overlay in ("gke", "dev"):
        config = find(render_overlay(overlay), "ConfigMap", "agent-config")["data"]
        assert int(config["MAX_CALL_DURATION_S"]) <= MAX_CALL_DURATION_S
    assert transcription.MAX_RECORDING_S == MAX_CALL_DURATION_S + transcription.EGRESS_TAIL_S
