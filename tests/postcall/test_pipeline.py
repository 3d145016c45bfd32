"""End to end, bucket -> searchable record: real GCS emulator, faster-whisper, llama.cpp, SQLite index."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from callcenter.ids import new_call_id
from callcenter.paths import audio_path, report_path
from callcenter.record import AnalysisStatus, RecordStatus, TranscriptSource
from callcenter.report import Speaker
from callindex import CallFilter, open_call_index
from callindex.embeddings import CallEmbedder
from orchestration.defs.postcall import call_analyses, call_index, call_transcripts
from orchestration.defs.postcall.analysis import CallLLM, StructuredOutput
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.resources import CallEmbeddings, CallIndexResource, RedactionSettings
from orchestration.defs.postcall.speech import WhisperSpeechToText
from orchestration.resources.campaigns import LOCAL_CAMPAIGNS_DIR, CampaignCatalog
from tests.postcall.conftest import LLM_MODEL, upload_call

pytestmark = pytest.mark.xdist_group("postcall")

DAY = "2026-11-24"
CARD_DIGITS = ("4111", "one one one one", "1-1-1-1")


def _copy_as_new_call(call, started_at: datetime):
    """The same conversation under a new call id (for the broken-file variants)."""
    call_id = new_call_id(started_at)
    report = call.report.model_copy(update={"call_id": call_id, "room": call_id, "recording_path": audio_path(call_id)})
    return type(call)(report, audio_path(call_id), report_path(call_id), call.audio)


def _run(resources: dict, keys: list[str] | None = None, reprocess: bool = False) -> dg.ExecuteInProcessResult:
    config = {"calls": keys or [], "reprocess": reprocess}
    return dg.materialize(
        [call_transcripts, call_analyses, call_index],
        partition_key=DAY,
        resources=resources,
        run_config={"ops": {"call_transcripts": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
    )


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def embedder() -> CallEmbedder:
    return CallEmbedder()


@pytest.mark.timeout(600)
def test_bucket_to_searchable_record(bucket, tmp_path, llm_base_url, render_demo_call, embedder) -> None:
    billing = render_demo_call("billing_question", datetime(2026, 11, 24, 15, 0, tzinfo=UTC))
    wrong = render_demo_call("wrong_number", datetime(2026, 11, 24, 15, 10, tzinfo=UTC))
    empty = _copy_as_new_call(wrong, datetime(2026, 11, 24, 15, 20, tzinfo=UTC))
    corrupt = _copy_as_new_call(wrong, datetime(2026, 11, 24, 15, 50, tzinfo=UTC))
    upload_call(bucket, billing)
    upload_call(bucket, wrong)
    upload_call(bucket, empty, audio=b"")
    upload_call(bucket, corrupt, report=b'{"call_id": "not json')

    resources = {
        "recordings_bucket": bucket,
        "speech_to_text": WhisperSpeechToText(cpu_threads=2),
        "call_llm": CallLLM(
            base_url=llm_base_url,
            model=LLM_MODEL,
            structured_output=StructuredOutput.JSON_OBJECT_SCHEMA,
            max_attempts=1,  # retries are covered in test_analysis; here one try per call bounds the time
            max_tokens=300,
        ),
        "call_embeddings": CallEmbeddings(),
        "call_index_store": CallIndexResource(data_dir=str(tmp_path)),
        "redaction": RedactionSettings(),
        "campaign_catalog": CampaignCatalog(directory=str(LOCAL_CAMPAIGNS_DIR)),
    }
    result = _run(resources)  # no selection: every call of the day, as a backfill does
    assert result.success

    index = open_call_index(CallIndexResource(data_dir=str(tmp_path)).resolved_url())
    try:
        # Three calls have a readable report and are indexed; the corrupt report is not, with its reason kept.
        assert index.count() == 3
        unindexable = result.output_for_node("call_index")["unindexable"]
        assert list(unindexable) == [corrupt.report.call_id]
        assert "not a valid SessionReport" in unindexable[corrupt.report.call_id]

        rec = index.get(billing.report.call_id)
        assert rec is not None and rec.status is RecordStatus.INDEXED
        assert rec.transcript_source is TranscriptSource.RECORDING
        assert {s.speaker for s in rec.transcript} == {Speaker.AGENT, Speaker.CALLER}
        starts = [s.start for s in rec.transcript]
        assert starts == sorted(starts) and all(s.end >= s.start for s in rec.transcript)
        assert "refund" in rec.transcript_text.lower()
        assert rec.alternate_transcript  # the agent's live transcript is kept too
        assert rec.recording_uri == f"gs://{bucket.bucket_name}/{billing.audio_object}"
        assert rec.latency.turns_measured == len(billing.report.latency)
        assert rec.latency.per_turn == sorted(billing.report.latency, key=lambda t: t.turn_index)
        # The spoken card number is gone from everything stored: transcripts, analysis, the whole record.
        stored = rec.model_dump_json().lower()
        assert rec.redactions >= 1 and "[redacted card]" in stored
        assert not any(d in stored for d in CARD_DIGITS)
        # As a phrase: "one" alone is an ordinary word the summary may well use ("no one here").
        assert index.search_text("4111") == [] and index.search_text('"one one one one"') == []
        # The analysis is either validated or recorded as failed with a reason: never made up.
        if rec.analysis_status is AnalysisStatus.OK:
            assert rec.analysis is not None and rec.analysis.summary
        else:
            assert rec.analysis_status is AnalysisStatus.FAILED and rec.analysis is None and rec.analysis_error

        # Searchable: filtered full text and vector search find the billing call.
        hits = index.search_text("refund", CallFilter(started_from=datetime(2026, 11, 24, tzinfo=UTC)))
        assert [h.record.call_id for h in hits] == [billing.report.call_id]
        query = embedder.embed_query("caller charged twice wants a refund for a duplicate card charge")
        assert index.search_vector(query, limit=1)[0].record.call_id == billing.report.call_id

        # A broken recording fails its own call with a reason; the live transcript still serves.
        broken = index.get(empty.report.call_id)
        assert broken is not None and "empty" in (broken.failure_reason or "")
        assert broken.transcript_source is TranscriptSource.LIVE and broken.recording_uri is None
    finally:
        index.close()

    checks = _checks(result)
    present = checks["recording_present"]
    assert not present.passed
    assert set(present.metadata["details"].value) == {empty.report.call_id}
    duration = checks["recording_duration_matches_sip"]
    assert set(duration.metadata["details"].value) == {empty.report.call_id}  # billing and wrong_number match
    assert checks["index_rows_match_processed_calls"].passed
    unreadable = checks["session_reports_indexable"]
    assert not unreadable.passed and set(unreadable.metadata["details"].value) == {corrupt.report.call_id}
    assert checks["transcript_non_empty"].passed

    # The same calls again: nothing indexed is redone (same report generations); only the call
    # whose report could not be read is tried again ...
    again = _run(resources)
    assert list(again.output_for_node("call_transcripts")) == [corrupt.report.call_id]
    # ... and an explicit re-run replaces the row rather than adding one.
    key = CallRef(wrong.report_object, int(bucket.bucket.get_blob(wrong.report_object).generation)).key
    before = _index_record(tmp_path, wrong.report.call_id)
    rerun = _run(resources, keys=[key], reprocess=True)
    assert rerun.success
    after = _index_record(tmp_path, wrong.report.call_id)
    assert after.processed_at > before.processed_at
    index = open_call_index(CallIndexResource(data_dir=str(tmp_path)).resolved_url())
    try:
        assert index.count() == 3
    finally:
        index.close()


def _index_record(data_dir, call_id: str):
    index = open_call_index(CallIndexResource(data_dir=str(data_dir)).resolved_url())
    try:
        return index.get(call_id)
    finally:
        index.close()


def test_a_call_outside_the_partition_is_refused(bucket, tmp_path) -> None:
    key = CallRef(report_path(new_call_id(datetime(2026, 11, 23, 9, tzinfo=UTC))), 1).key
    resources = {
        "recordings_bucket": bucket,
        "speech_to_text": WhisperSpeechToText(),
        "call_llm": CallLLM(base_url="http://127.0.0.1:9/v1", model=LLM_MODEL),
        "call_embeddings": CallEmbeddings(),
        "call_index_store": CallIndexResource(data_dir=str(tmp_path)),
        "redaction": RedactionSettings(),
        "campaign_catalog": CampaignCatalog(directory=str(LOCAL_CAMPAIGNS_DIR)),
    }
    with pytest.raises(dg.Failure, match="outside partition 2026-11-24"):
        dg.materialize(
            [call_transcripts],
            partition_key=DAY,
            resources=resources,
            run_config={"ops": {"call_transcripts": {"config": {"calls": [key]}}}},
            instance=dg.DagsterInstance.ephemeral(),
        )
