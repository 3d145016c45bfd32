"""What a replay refuses or records as failed before any call is placed (no LiveKit reached)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np

from callcenter.audio import encode_ogg_opus
from callcenter.ids import new_call_id
from callcenter.outcomes import CallOutcome
from callcenter.replay import ReplayStatus, list_replay_ids, read_result
from orchestration.defs.postcall.resources import RedactionSettings
from orchestration.defs.replay import call_replays
from orchestration.defs.replay.resources import ReplayAgent
from orchestration.resources.livekit import LiveKitResource
from orchestration.resources.storage import RecordingsBucket
from tests.replay.test_comparison import report

# nothing listens here: a run that tried to place a call would fail its rows, not pass
NO_LIVEKIT = LiveKitResource(url="ws://127.0.0.1:9", api_key="k", api_secret="s")


def run(bucket: RecordingsBucket, config: dict, scratch: str | None = None) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [call_replays],
        resources={
            "recordings_bucket": bucket,
            "livekit": NO_LIVEKIT,
            "replay_agent": ReplayAgent(
                scratch_bucket=scratch or f"scratch-{uuid.uuid4().hex[:8]}",
                project="local",
                emulator_host=bucket.emulator_host,
            ),
            "redaction": RedactionSettings(),
        },
        run_config={"ops": {"call_replays": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    (event,) = [e for e in result.all_events if e.is_step_failure]
    return event.step_failure_data.error.message + str(event.step_failure_data.user_failure_data)


def test_the_recordings_bucket_is_never_the_scratch_bucket(new_bucket) -> None:
    bucket = new_bucket("replay-refuse")
    result = run(bucket, {"call_ids": [new_call_id()]}, scratch=bucket.bucket_name)
    assert not result.success
    assert "scratch bucket is the recordings bucket" in failure_message(result)
    assert list_replay_ids(bucket.recordings) == []


def test_a_selection_over_max_calls_is_refused_whole(new_bucket) -> None:
    bucket = new_bucket("replay-refuse")
    ids = [new_call_id(datetime.now(UTC) - timedelta(minutes=i)) for i in range(3)]
    result = run(bucket, {"call_ids": ids, "max_calls": 2})
    assert not result.success
    assert "holds 3 calls, more than max_calls=2" in failure_message(result)


def test_calls_that_cannot_be_replayed_are_rows_with_why(new_bucket) -> None:
    bucket = new_bucket("replay-refuse")
    no_report = new_call_id()
    no_audio, mono = report(), report()
    bucket.write_bytes(
        no_audio.recording_path.replace("audio.ogg", "session.json"),
        no_audio.model_dump_json().encode(),
        "application/json",
    )
    bucket.write_bytes(
        mono.recording_path.replace("audio.ogg", "session.json"), mono.model_dump_json().encode(), "application/json"
    )
    bucket.write_bytes(mono.recording_path, encode_ogg_opus(np.zeros((16000, 1), np.float32), 16000), "audio/ogg")
    result = run(bucket, {"call_ids": [no_report, no_audio.call_id, mono.call_id]})
    assert result.success  # stored, and the check says so
    stored = read_result(bucket.recordings, result.run_id)
    reasons = {r.call_id: (r.status, r.reason) for r in stored.rows}
    assert reasons == {
        no_report: (ReplayStatus.FAILED, "no session report in the recordings bucket"),
        no_audio.call_id: (ReplayStatus.FAILED, "recording missing from the bucket"),
        mono.call_id: (
            ReplayStatus.FAILED,
            "recording is mono: the caller's side cannot be separated from the agent's",
        ),
    }
    assert stored.summary.failed == 3 and stored.summary.replayed == 0
    (check,) = result.get_asset_check_evaluations()
    assert not check.passed and check.metadata["failed"].value == 3


def test_calls_with_nothing_to_play_are_skipped_not_failed(new_bucket) -> None:
    """A day's outbound attempts nobody answered would otherwise fail every nightly replay."""
    bucket = new_bucket("replay-refuse")
    unanswered = report(outcome=CallOutcome.NO_ANSWER, agent=(), caller=()).model_copy(update={"answered_at": None})
    silent = report(caller=())
    for r in (unanswered, silent):
        bucket.write_bytes(
            r.recording_path.replace("audio.ogg", "session.json"), r.model_dump_json().encode(), "application/json"
        )
    bucket.write_bytes(silent.recording_path, encode_ogg_opus(np.zeros((16000, 2), np.float32), 16000), "audio/ogg")
    result = run(bucket, {"call_ids": [unanswered.call_id, silent.call_id]})
    stored = read_result(bucket.recordings, result.run_id)
    assert [(r.status, r.reason) for r in stored.rows] == [
        (ReplayStatus.SKIPPED, "never answered (no_answer): nothing to play back"),
        (ReplayStatus.SKIPPED, "the caller said nothing in the original: nothing to play back"),
    ]
    assert (stored.summary.skipped, stored.summary.failed) == (2, 0)
    (check,) = result.get_asset_check_evaluations()
    assert check.passed
