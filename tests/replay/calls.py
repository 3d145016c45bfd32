"""Recorded calls for the replay tests and the replay run they go through."""

from __future__ import annotations

import random
from datetime import datetime

import dagster as dg

from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.report import Speaker
from devstack.demo_calls import GREETING, Scenario, render_call
from orchestration.defs.postcall.resources import RedactionSettings
from orchestration.defs.replay import LOCAL_WORKER_ENV, call_replays
from orchestration.defs.replay.resources import ReplayAgent
from orchestration.resources.livekit import LiveKitResource
from orchestration.resources.storage import RecordingsBucket

SHORT_CALL = Scenario(
    "short_booking",
    CallDirection.INBOUND,
    CallOutcome.ANSWERED,
    "receptionist",  # no such persona in agent/personas: the replay must choose one or fail the call
    (
        (Speaker.AGENT, GREETING + " How can I help?"),
        (Speaker.CALLER, "Hi, I would like to book an appointment for next Tuesday."),
        (Speaker.AGENT, "Of course. Tuesday at ten works. You are booked."),
    ),
)


def record_call(bucket: RecordingsBucket, at: datetime, seed: int) -> str:
    """SHORT_CALL rendered (Piper agent, espeak-ng caller) into the bucket as production lays a call out."""
    call = render_call(SHORT_CALL, at, random.Random(seed), seed)
    bucket.write_bytes(call.audio_object, call.audio, "audio/ogg")
    bucket.write_bytes(call.report_object, call.report.model_dump_json().encode(), "application/json")
    return call.report.call_id


def replay(
    bucket: RecordingsBucket, scratch: str, lk, engines: dict[str, str], config: dict
) -> dg.ExecuteInProcessResult:  # noqa: ANN001
    return dg.materialize(
        [call_replays],
        resources={
            "recordings_bucket": bucket,
            "livekit": LiveKitResource(url=lk.url, api_key=lk.api_key, api_secret=lk.api_secret),
            "replay_agent": ReplayAgent(
                scratch_bucket=scratch,
                project="local",
                emulator_host=bucket.emulator_host,
                worker_env={**LOCAL_WORKER_ENV, **engines, "HF_HUB_OFFLINE": "1"},
                agent_timeout_s=30,
                hang_up_after_s=2,
                report_timeout_s=45,
            ),
            "redaction": RedactionSettings(),
        },
        run_config={"ops": {"call_replays": {"config": config}}},
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
