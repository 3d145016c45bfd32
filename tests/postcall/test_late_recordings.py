"""A recording that lands after its session report is picked up and used (issue 22, item 2).

The agent waits 60 s for Egress, then writes the report anyway: the call is indexed from its live
transcript, "recording missing". When ``audio.ogg`` lands later, a sensor requests the call again
and the run does not skip it for having been indexed from the same report generation.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pytest

from callcenter.record import TranscriptSource
from callindex import EMBEDDING_DIM
from orchestration.defs.postcall import call_transcripts
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.records import build_record
from orchestration.defs.postcall.resources import CallIndexResource, RedactionSettings
from orchestration.defs.postcall.sensors import call_recordings_sensor, late_recordings_sensor
from orchestration.defs.postcall.speech import WhisperSpeechToText
from orchestration.defs.postcall.transcription import TranscribedCall
from tests.postcall.conftest import upload_call

pytestmark = pytest.mark.xdist_group("postcall")


def _requests(sensor, bucket, cursor: str | None):
    context = dg.build_sensor_context(cursor=cursor, resources={"recordings_bucket": bucket})
    result = sensor(context)
    return [
        r for r in (result if isinstance(result, list) else [result]) if isinstance(r, dg.RunRequest)
    ], context.cursor


def _keys(requests) -> list[str]:
    return [k for r in requests for k in r.run_config["ops"]["call_transcripts"]["config"]["calls"]]


def test_a_recording_landing_after_its_report_is_requested(bucket, render_demo_call) -> None:
    started = datetime.now(UTC) - timedelta(minutes=5)
    late = render_demo_call("wrong_number", started)
    on_time = render_demo_call("do_not_call", started + timedelta(seconds=30))
    upload_call(bucket, late, audio=False)  # the report, without the recording
    upload_call(bucket, on_time)  # recording first, report last: the usual order

    first, cursor = _requests(late_recordings_sensor, bucket, None)
    assert first == []  # no recording has landed after its report yet
    bucket.write_bytes(late.audio_object, late.audio, "audio/ogg")
    requests, cursor = _requests(late_recordings_sensor, bucket, cursor)

    generation = int(bucket.bucket.get_blob(late.report_object).generation)
    assert _keys(requests) == [CallRef(late.report_object, generation).key]
    assert requests[0].partition_key == started.date().isoformat()
    assert requests[0].run_key.startswith("postcall-late-recording:")
    again, _ = _requests(late_recordings_sensor, bucket, cursor)
    assert again == []  # requested once
    bucket.write_bytes(late.audio_object, late.audio + b"", "audio/ogg")  # Egress uploads it again
    (reupload,), _ = _requests(late_recordings_sensor, bucket, cursor)
    assert _keys([reupload]) == _keys(requests) and reupload.run_key != requests[0].run_key
    # The report sensor does not see the recording as new work.
    reports, _ = _requests(call_recordings_sensor, bucket, None)
    assert _keys(reports) and all("session.json" in k for k in _keys(reports))


def _transcripts(bucket, tmp_path, keys: list[str], day: str) -> dict[str, TranscribedCall]:
    result = dg.materialize(
        [call_transcripts],
        partition_key=day,
        resources={
            "recordings_bucket": bucket,
            "speech_to_text": WhisperSpeechToText(),
            "redaction": RedactionSettings(),
            "call_index_store": CallIndexResource(data_dir=str(tmp_path)),
        },
        run_config={"ops": {"call_transcripts": {"config": {"calls": keys}}}},
        instance=dg.DagsterInstance.ephemeral(),
    )
    return result.output_for_node("call_transcripts")


@pytest.mark.timeout(300)
def test_a_call_indexed_without_its_recording_is_transcribed_again_once_it_lands(
    bucket, tmp_path, render_demo_call
) -> None:
    started = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    call = render_demo_call("wrong_number", started)
    upload_call(bucket, call, audio=False)
    ref = CallRef(call.report_object, int(bucket.bucket.get_blob(call.report_object).generation))
    day = started.date().isoformat()

    # Indexed from the live transcript, recording missing (as the first run left it).
    first = _transcripts(bucket, tmp_path, [ref.key], day)[call.report.call_id]
    assert first.recording_bytes is None and first.chosen is TranscriptSource.LIVE
    index = CallIndexResource(data_dir=str(tmp_path)).open()
    index.upsert(build_record(first, None, None, datetime.now(UTC)), np.zeros(EMBEDDING_DIM, np.float32))
    index.close()
    assert _transcripts(bucket, tmp_path, [ref.key], day) == {}  # same report, still no recording: skipped

    bucket.write_bytes(call.audio_object, call.audio, "audio/ogg")
    again = _transcripts(bucket, tmp_path, [ref.key], day)[call.report.call_id]
    assert again.recording_bytes == len(call.audio) and again.chosen is TranscriptSource.RECORDING
