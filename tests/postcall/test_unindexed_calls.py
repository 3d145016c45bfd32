"""The call_index asset writes the calls it could not index to the index, with the reason (error
type and location, never the input), and clears them once indexed (issue 22, item 5).

Through the real assets: GCS emulator, SQLite index, the scripted LLM server; the STT is a local
double (the words do not matter here, the flow does).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pytest

from callcenter.ids import new_call_id
from callcenter.paths import audio_path, report_path
from callindex import UnindexedState, open_call_index
from doubles.llm_server import ScriptedLLM
from orchestration.defs.postcall import call_analyses, call_index, call_transcripts
from orchestration.defs.postcall.resources import CallIndexResource
from orchestration.defs.postcall.speech import SpeechSegment, SpeechToText
from tests.postcall.conftest import postcall_resources, upload_call

pytestmark = [pytest.mark.xdist_group("postcall"), pytest.mark.timeout(300)]

DAY = "2026-11-24"
SECRET = "+15555550188"


class OneSegmentSpeechToText(SpeechToText):
    def transcribe(self, samples: np.ndarray) -> list[SpeechSegment]:
        return [SpeechSegment(0.1, 1.0, "hello there")] if samples.size else []


@pytest.fixture
def scripted_llm():
    llm = ScriptedLLM().start()
    try:
        yield llm
    finally:
        llm.stop()


def _run(resources: dict) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [call_transcripts, call_analyses, call_index],
        partition_key=DAY,
        resources=resources,
        run_config={"ops": {"call_transcripts": {"config": {"calls": []}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )


def test_an_unreadable_report_is_in_the_index_with_its_reason_until_it_is_indexed(
    bucket, tmp_path, render_demo_call, scripted_llm
) -> None:
    good = render_demo_call("wrong_number", datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    call_id = new_call_id(datetime(2026, 11, 24, 9, 10, tzinfo=UTC))
    fixed = good.report.model_copy(update={"call_id": call_id, "room": call_id, "recording_path": audio_path(call_id)})
    bad = type(good)(fixed, audio_path(call_id), report_path(call_id), good.audio)
    unreadable = json.loads(fixed.model_dump_json()) | {"schema_version": 99, "from_number": SECRET}
    upload_call(bucket, good)
    upload_call(bucket, bad, report=json.dumps(unreadable).encode())
    resources = postcall_resources(bucket, OneSegmentSpeechToText(), scripted_llm.base_url, tmp_path)
    assert _run(resources).success
    generation = int(bucket.bucket.get_blob(bad.report_object).generation)

    index = open_call_index(CallIndexResource(data_dir=str(tmp_path)).resolved_url())
    try:
        (row,) = index.list_unindexed().items
        assert row.call_id == call_id and row.state is UnindexedState.UNREADABLE
        assert row.day.isoformat() == DAY and row.generation == generation
        assert "literal_error at schema_version" in row.reason  # the cause, not "1 validation error"
        assert SECRET not in row.model_dump_json() and "5555550188" not in row.model_dump_json()
        assert index.get(good.report.call_id) is not None and index.get(call_id) is None
    finally:
        index.close()

    upload_call(bucket, bad)  # the agent's report, rewritten readable: a new generation
    assert _run(resources).success
    index = open_call_index(CallIndexResource(data_dir=str(tmp_path)).resolved_url())
    try:
        assert index.get(call_id) is not None
        assert index.list_unindexed().items == []  # indexed: no longer listed as unreadable
    finally:
        index.close()


def test_a_processing_failure_keeps_only_the_error_type() -> None:
    """Its message may quote the call: only the type reaches the index (and the browser)."""
    from orchestration.defs.postcall.assets import not_indexed
    from orchestration.defs.postcall.calls import CallRef
    from orchestration.defs.postcall.transcription import TranscribedCall

    call_id = new_call_id(datetime(2026, 11, 24, 9, 0, tzinfo=UTC))
    call = TranscribedCall(ref=CallRef(report_path(call_id), 5))
    now = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    row = not_indexed(call, f"transcription error: ValueError: could not parse {SECRET}", now)
    assert (row.state, row.reason, row.generation) == (UnindexedState.FAILED, "transcription error: ValueError", 5)
    gone = not_indexed(call, "session report disappeared from the bucket", now)
    assert gone.state is UnindexedState.UNREADABLE and gone.day.isoformat() == DAY
