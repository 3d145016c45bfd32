"""The recordings-bucket sensor, the nightly reconciliation and the views schedule."""

from datetime import UTC, datetime, timedelta

import dagster as dg

from callcenter.bucket import ReportCursor
from orchestration.defs.postcall.assets import DOMAIN_TAGS, call_analyses, call_index, call_transcripts
from orchestration.defs.postcall.discovery import discover
from orchestration.defs.postcall.partitions import daily_calls
from orchestration.defs.postcall.pending import POSTCALL_JOB_NAME, requested_calls_indexed
from orchestration.defs.postcall.views import VIEW_ASSETS
from orchestration.resources.storage import RecordingsBucket

# Longest a call (plus Egress upload) may take: reports of calls started this long before the
# watermark can still appear, so listing starts there.
MAX_CALL_DURATION = timedelta(hours=6)
INITIAL_LOOKBACK = timedelta(days=3)  # a fresh deployment also picks up the last full days
MAX_RUNTIME_S = 3 * 3600

postcall_job = dg.define_asset_job(
    POSTCALL_JOB_NAME,
    # The pending check reads every batch's runs: it runs on its own schedule, not in each batch.
    selection=dg.AssetSelection.assets(call_transcripts, call_analyses, call_index)
    - dg.AssetSelection.checks(requested_calls_indexed),
    partitions_def=daily_calls,
    tags={**DOMAIN_TAGS, "dagster/max_runtime": str(MAX_RUNTIME_S)},
    description="Transcribe, redact, analyse and index a batch of completed calls of one day.",
)

postcall_views_job = dg.define_asset_job(
    "postcall_views",
    selection=VIEW_ASSETS,
    partitions_def=daily_calls,
    tags={**DOMAIN_TAGS, "dagster/max_runtime": "1800"},
    description="Refresh the day's pandas views (outcomes, sentiment, latency) from the call index.",
)


def _requests(context: dg.SensorEvaluationContext, bucket: RecordingsBucket, late_recordings: bool, tags: dict):
    now = datetime.now(UTC)
    cursor = ReportCursor.parse(context.cursor, now, INITIAL_LOOKBACK)
    batches, new_cursor = discover(bucket.list_objects, cursor, now, MAX_CALL_DURATION, late_recordings=late_recordings)
    requests = [
        dg.RunRequest(
            run_key=batch.run_key,
            partition_key=batch.partition_key,
            run_config={"ops": {"call_transcripts": {"config": {"calls": [r.key for r in batch.refs]}}}},
            tags={**DOMAIN_TAGS, **tags, "callcenter/calls": str(len(batch.refs))},
        )
        for batch in batches
    ]
    if not requests:
        what = "recordings landing after their report" if late_recordings else "session reports"
        return dg.SkipReason(f"no new {what} since {cursor.since.isoformat()}")
    context.update_cursor(new_cursor.serialize())
    return requests


@dg.sensor(
    job=postcall_job,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="New session reports in the recordings bucket -> one postcall run per day batch.",
)
def call_recordings_sensor(context: dg.SensorEvaluationContext, recordings_bucket: RecordingsBucket):
    return _requests(context, recordings_bucket, late_recordings=False, tags={})


@dg.sensor(
    job=postcall_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        "Recordings (audio.ogg) that land after their call's session report (the agent stops waiting for "
        "Egress after 60 s) -> the call again: a call indexed without its recording is transcribed from it."
    ),
)
def late_recordings_sensor(context: dg.SensorEvaluationContext, recordings_bucket: RecordingsBucket):
    return _requests(context, recordings_bucket, late_recordings=True, tags={"callcenter/late_recording": "true"})


RECONCILE_DAYS = 7


@dg.schedule(
    job=postcall_job,
    cron_schedule="15 3 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Nightly, every call of the last 7 days: what the sensor's listing cannot see (a report "
        "written or rewritten hours after its call started) is processed; calls already indexed "
        "from the same or a newer report generation are skipped."
    ),
)
def postcall_reconcile_schedule(context: dg.ScheduleEvaluationContext):
    at = context.scheduled_execution_time.astimezone(UTC)
    days = [(at - timedelta(days=n)).date() for n in range(RECONCILE_DAYS, -1, -1)]
    return [
        dg.RunRequest(
            run_key=f"reconcile:{day}:{at:%Y%m%d}",
            partition_key=day.isoformat(),
            run_config={"ops": {"call_transcripts": {"config": {"calls": []}}}},
            tags={**DOMAIN_TAGS, "callcenter/reconcile": "true"},
        )
        for day in days
    ]


@dg.schedule(
    job=postcall_views_job,
    cron_schedule="*/30 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Today's views every 30 minutes (yesterday's too, shortly after midnight).",
)
def postcall_views_schedule(context: dg.ScheduleEvaluationContext):
    at = context.scheduled_execution_time.astimezone(UTC)
    days = {at.date()}
    if at.hour == 0 and at.minute < 30:
        days.add((at - timedelta(days=1)).date())
    return [
        dg.RunRequest(run_key=f"views:{day}:{at:%H%M}", partition_key=day.isoformat(), tags=DOMAIN_TAGS)
        for day in sorted(days)
    ]


MAX_BATCH_ATTEMPTS = 4  # then the calls wait for the nightly reconcile, shown as pending meanwhile
ATTEMPT_TAG = "callcenter/attempt"


@dg.run_failure_sensor(
    name="failed_batches_sensor",
    monitored_jobs=[postcall_job],
    request_job=postcall_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description=(
        f"A postcall batch that failed (the LLM or STT away after the step retries) -> the same calls again, "
        f"within a minute or two, up to {MAX_BATCH_ATTEMPTS} attempts; calls already indexed are skipped."
    ),
)
def failed_batches_sensor(context: dg.RunFailureSensorContext):
    run = context.dagster_run
    attempt = int(run.tags.get(ATTEMPT_TAG, "1"))
    partition = run.tags.get("dagster/partition")
    if partition is None:
        return dg.SkipReason(f"run {run.run_id} has no partition: nothing to request again")
    if attempt >= MAX_BATCH_ATTEMPTS:
        return dg.SkipReason(
            f"run {run.run_id} was attempt {attempt} of {MAX_BATCH_ATTEMPTS}: its calls wait for the nightly "
            "reconcile (requested_calls_indexed lists them as pending)"
        )
    kept = {k: v for k, v in run.tags.items() if k.startswith("callcenter/")}
    return dg.RunRequest(
        run_key=f"postcall-retry:{run.run_id}",
        partition_key=partition,
        run_config=run.run_config,
        tags={**kept, **DOMAIN_TAGS, ATTEMPT_TAG: str(attempt + 1), "callcenter/retry_of": run.run_id},
    )


pending_calls_job = dg.define_asset_job(
    "postcall_pending_calls",
    selection=dg.AssetSelection.checks(requested_calls_indexed),
    tags={**DOMAIN_TAGS, "dagster/max_runtime": "600"},
    description="Which requested calls are still not indexed (failed or stuck batches).",
)

postcall_pending_schedule = dg.ScheduleDefinition(
    name="postcall_pending_schedule",
    job=pending_calls_job,
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Every 10 minutes: calls requested but not indexed, as the requested_calls_indexed check.",
)
