"""The agent files a call's report under its call id's day, so dialing reads it at one path."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from agent.session_report import upload_report
from agent.settings import load_settings
from callcenter.ids import deterministic_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import report_path
from callcenter.report import SessionReport, parse_report
from tests.agent.conftest import bucket_client


async def test_a_call_minted_before_midnight_utc_is_filed_under_that_day(gcs_emulator: str, recordings_bucket: str):
    minted = datetime(2026, 11, 25, 23, 59, 59, 900000, tzinfo=UTC)
    call_id = deterministic_call_id(minted, random.Random(5))
    started = minted + timedelta(seconds=3)  # the callee picks up after midnight
    report = SessionReport(
        call_id=call_id,
        room=call_id,
        direction=CallDirection.OUTBOUND,
        started_at=started,
        ended_at=started + timedelta(minutes=1),
        outcome=CallOutcome.ANSWERED,
    )
    settings = load_settings(recordings_bucket=recordings_bucket, storage_emulator_host=gcs_emulator)
    name = await upload_report(settings, report)
    assert name == report_path(call_id) == f"recordings/2026/11/25/{call_id}/session.json"
    raw = bucket_client(gcs_emulator).bucket(recordings_bucket).blob(name).download_as_bytes()
    assert parse_report(raw) == report
