"""A failed batch is requested again within minutes, and calls requested but not indexed show as pending (issue 22, item 3)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pytest

from callcenter.paths import report_path
from callindex import EMBEDDING_DIM, UnindexedState
from orchestration.defs.postcall import defs as postcall_defs
from orchestration.defs.postcall import pending, sensors
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.resources import CallIndexResource
from tests.postcall.conftest import make_record

pytestmark = pytest.mark.xdist_group("postcall")

DAY = "2026-11-24"
AT = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


PLACEHOLDERS = {
    key: dg.ResourceDefinition.none_resource()
    for key in (
        "recordings_bucket",
        "speech_to_text",
        "redaction",
        "call_index_store",
        "call_llm",
        "call_embeddings",
        "campaign_catalog",
    )
}


def _job() -> dg.JobDefinition:
    return dg.Definitions(
        assets=postcall_defs.assets,
        asset_checks=postcall_defs.asset_checks,
        jobs=[sensors.postcall_job],
        resources=PLACEHOLDERS,
    ).resolve_job_def("postcall_calls")


def _failed_run(instance: dg.DagsterInstance, keys: list[str], **tags: str) -> dg.DagsterRun:
    run = instance.create_run_for_job(
        _job(),
        run_config={"ops": {"call_transcripts": {"config": {"calls": keys}}}},
        tags={"dagster/partition": DAY, "callcenter/domain": "postcall", **tags},
    )
    instance.report_run_failed(run)
    return instance.get_run_by_id(run.run_id)


def _evaluate(instance: dg.DagsterInstance, run: dg.DagsterRun):
    (record,) = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    context = dg.build_run_status_sensor_context(
        sensor_name="failed_batches_sensor",
        dagster_instance=instance,
        dagster_run=run,
        dagster_event=record.event_log_entry.dagster_event,
    )
    return sensors.failed_batches_sensor(context)


def test_a_failed_batch_is_requested_again_with_the_same_calls() -> None:
    keys = [f"{report_path('call-01a20cff-7d00-73ce-a2d4-a6d297b75092')}#7"]
    with dg.instance_for_test() as instance:
        failed = _failed_run(instance, keys)
        request = _evaluate(instance, failed)
        assert isinstance(request, dg.RunRequest)
        assert request.partition_key == DAY
        assert request.run_config == failed.run_config  # the same calls
        assert request.run_key == f"postcall-retry:{failed.run_id}"
        assert request.tags["callcenter/attempt"] == "2" and request.tags["callcenter/retry_of"] == failed.run_id

        # Bounded: after the last attempt the calls wait for the nightly reconcile, shown as pending.
        last = _failed_run(instance, keys, **{"callcenter/attempt": str(sensors.MAX_BATCH_ATTEMPTS)})
        assert isinstance(_evaluate(instance, last), dg.SkipReason)


def test_the_failure_sensor_watches_the_postcall_job_and_runs_by_default() -> None:
    sensor = sensors.failed_batches_sensor
    assert sensor.default_status is dg.DefaultSensorStatus.RUNNING
    assert sensor.minimum_interval_seconds <= 120  # within minutes, not at 03:15


def test_requested_but_unindexed_calls_show_as_pending(tmp_path, monkeypatch) -> None:
    rng = random.Random(5)
    indexed, lost = make_record(AT, rng, generation=3), make_record(AT.replace(minute=5), rng, generation=3)
    index = CallIndexResource(data_dir=str(tmp_path)).open()
    index.upsert(indexed, np.zeros(EMBEDDING_DIM, np.float32))
    index.close()
    keys = [CallRef(report_path(r.call_id), 3).key for r in (indexed, lost)]
    monkeypatch.setattr(pending, "PENDING_GRACE", timedelta(0))

    with dg.instance_for_test() as instance:
        _failed_run(instance, keys)
        result = (
            dg.Definitions(
                assets=postcall_defs.assets,
                asset_checks=postcall_defs.asset_checks,
                jobs=[sensors.pending_calls_job],
                resources={**PLACEHOLDERS, "call_index_store": CallIndexResource(data_dir=str(tmp_path))},
            )
            .resolve_job_def("postcall_pending_calls")
            .execute_in_process(instance=instance)
        )
    (check,) = result.get_asset_check_evaluations()
    assert check.check_name == "requested_calls_indexed" and not check.passed
    assert check.metadata["pending_calls"].value == 1
    assert list(check.metadata["pending"].value) == [lost.call_id]
    assert check.metadata["pending_by_day"].value == {DAY: 1}

    # ... and in the call index, where the call browser lists them; indexing the call clears it.
    index = CallIndexResource(data_dir=str(tmp_path)).open()
    try:
        (row,) = index.list_unindexed().items
        assert (row.call_id, row.state, row.generation) == (lost.call_id, UnindexedState.PENDING, 3)
        assert row.day.isoformat() == DAY and row.reason.startswith("requested ") and "run failure" in row.reason
        index.upsert(lost, np.zeros(EMBEDDING_DIM, np.float32))
        assert index.list_unindexed().items == []
    finally:
        index.close()
