"""A recorded demo call replayed through the real livekit-server and the real agent worker (its
production entrypoint, started by the replay with the changed settings, on the local engines),
the caller's recorded turn spoken by the phone-line stand-in; then compared with the original and
stored where the call browser reads it."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.bucket import open_client
from callcenter.outcomes import CallOutcome
from callcenter.paths import RECORDINGS_PREFIX
from callcenter.replay import ReplayStatus, list_replay_ids, read_result
from callcenter.report import Speaker
from orchestration.defs.replay.assets import EVERY_CALL_REPLAYED
from orchestration.resources.storage import RecordingsBucket
from tests.replay.calls import record_call, replay

pytestmark = [pytest.mark.slow, pytest.mark.calls, pytest.mark.xdist_group("e2e_calls"), pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def buckets(new_bucket) -> tuple[RecordingsBucket, str]:
    """The recordings bucket holding one recorded call, and the name of the replay's scratch bucket."""
    bucket = new_bucket("replay-recordings")
    record_call(bucket, datetime.now(UTC) - timedelta(days=1), seed=18)
    return bucket, f"replay-scratch-{uuid.uuid4().hex[:8]}"


def recorded_call_id(bucket: RecordingsBucket) -> str:
    (report,) = [b.name for b in bucket.list_prefix(RECORDINGS_PREFIX + "/") if b.name.endswith("/session.json")]
    return report.split("/")[-2]


def test_a_recorded_call_replays_with_another_persona_and_compares(real_livekit, engines, buckets) -> None:
    bucket, scratch = buckets
    call_id = recorded_call_id(bucket)
    started = time.monotonic()
    run = replay(
        bucket,
        scratch,
        real_livekit,
        engines,
        {"call_ids": [call_id], "persona": "inbound_support", "vad_min_silence_s": 0.5},
    )
    took = time.monotonic() - started
    assert run.success, run.all_events
    print(f"replay of one call: {took:.1f} s")  # docs/benchmarks.md, never asserted

    result = read_result(bucket.recordings, run.run_id)
    assert result is not None and list_replay_ids(bucket.recordings) == [run.run_id]
    assert result.settings.changed() == {"persona": "inbound_support", "vad_min_silence_s": 0.5}
    (row,) = result.rows
    assert row.status is ReplayStatus.REPLAYED, row.reason
    assert row.call_id == call_id and row.replay is not None and row.replay.call_id != call_id
    assert row.replay.recording_uri.startswith(f"gs://{scratch}/recordings/")
    assert row.original.recording_uri.startswith(f"gs://{bucket.bucket_name}/recordings/")
    assert row.replay.persona == "inbound_support" and row.original.persona == "receptionist"
    # the new agent disclosed both, as the original did: no regression, the same outcome
    assert row.replay.recording_disclosed and row.replay.automated_agent_disclosed
    assert row.disclosure_regressions == [] and not row.outcome_changed and not row.do_not_call_changed
    # the agent heard the caller's recorded words and answered them
    caller_heard = " ".join(t.text.lower() for t in row.replay.turns if t.speaker is Speaker.CALLER)
    assert "appointment" in caller_heard, row.replay.turns
    speakers = [t.speaker for t in row.replay.turns]
    assert Speaker.CALLER in speakers and Speaker.AGENT in speakers[speakers.index(Speaker.CALLER) :], row.replay.turns
    assert row.caller_similarity is not None and row.caller_similarity > 0.3

    summary = result.summary
    print(f"replay summary: {summary.model_dump_json()}")
    assert (summary.calls, summary.replayed, summary.failed, summary.disclosure_regressions) == (1, 1, 0, 0)
    materialization = run.asset_materializations_for_node("call_replays")[0]
    assert materialization.metadata["replayed"].value == 1
    assert materialization.metadata["browser_page"].value == f"/replays/{run.run_id}"
    (check,) = run.get_asset_check_evaluations()
    assert check.check_name == EVERY_CALL_REPLAYED and check.passed

    # the replayed call went to the scratch bucket only: nothing new for post-call or dialing
    assert recorded_call_id(bucket) == call_id
    scratch_reports = [
        b.name
        for b in open_client("local", bucket.emulator_host).list_blobs(scratch)
        if b.name.endswith("/session.json")
    ]
    assert len(scratch_reports) == 1 and row.replay.call_id in scratch_reports[0]


def test_a_persona_the_agent_cannot_load_fails_the_call_with_why(real_livekit, engines, buckets) -> None:
    bucket, scratch = buckets
    call_id = recorded_call_id(bucket)
    run = replay(bucket, scratch, real_livekit, engines, {"call_ids": [call_id]})  # the original's 'receptionist'
    assert run.success  # the run stores the failure; its check says it failed
    result = read_result(bucket.recordings, run.run_id)
    (row,) = result.rows
    assert row.status is ReplayStatus.FAILED and "INBOUND_PERSONA='receptionist'" in row.reason, row.reason
    assert row.original is not None and row.original.outcome is CallOutcome.ANSWERED
    (check,) = run.get_asset_check_evaluations()
    assert not check.passed and check.metadata["failed"].value == 1
