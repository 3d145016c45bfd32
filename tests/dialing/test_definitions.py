"""The dialing domain inside Dagster: graph, tags, local fail-fast, dry run, one real tick."""

from __future__ import annotations

import importlib
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from callcenter.dispatch import parse_dispatch
from doubles.livekit_server import LiveKitDouble
from orchestration.defs import dialing
from orchestration.defs.dialing.assets import campaign_contacts, dial_ledger, dialable_contacts, do_not_call_list
from orchestration.defs.dialing.jobs import campaign_control
from orchestration.defs.dialing.ledger import CampaignState, SqliteDialStore
from orchestration.defs.dialing.resources import CallCapacity, DialLedgerStore
from orchestration.deployment import Deployment
from orchestration.resources import shared_resources
from orchestration.resources.campaigns import CampaignCatalog
from orchestration.resources.livekit import LiveKitResource
from tests.dialing.conftest import campaign, write_catalog

REPO_CAMPAIGNS = Path(__file__).resolve().parents[2] / "campaigns"


def test_asset_graph_jobs_and_tags(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", "local")
    import orchestration.definitions as module

    defs = importlib.reload(module).defs
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    assert {"campaign_contacts", "do_not_call_list", "dialable_contacts", "dial_ledger"} <= keys
    assert {d.to_user_string() for d in graph.get(dg.AssetKey("dialable_contacts")).parent_keys} == {
        "campaign_contacts",
        "do_not_call_list",
    }
    repo = defs.get_repository_def()
    for name in ("load_campaigns", "dialing_dry_run", "dialing_tick", "campaign_control"):
        assert repo.get_job(name).tags["callcenter/domain"] == "dialing"
    schedule = repo.get_schedule_def("dialing_tick_every_minute")
    assert schedule.job_name == "dialing_tick" and schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    assert {"dial_ledger_store", "campaign_catalog", "call_capacity"} <= set(defs.resources)


@pytest.mark.parametrize("deployment", list(Deployment))
def test_every_deployment_has_the_dialing_resources(deployment: Deployment) -> None:
    assert set(dialing.resources(deployment)) == {"dial_ledger_store", "call_capacity"}
    assert "campaign_catalog" in shared_resources(deployment)  # dialing and post-call read one catalog


def local_resources(tmp_path: Path, campaigns_dir: Path, **extra) -> dict:
    return {
        "dial_ledger_store": DialLedgerStore(data_dir=str(tmp_path / "data")),
        "campaign_catalog": CampaignCatalog(directory=str(campaigns_dir)),
        "call_capacity": CallCapacity(stt_calls=4, llm_calls=4, tts_calls=4, recorder_calls=4),
        **extra,
    }


def test_demo_campaign_loads_and_dry_runs_locally(tmp_path: Path) -> None:
    campaigns_dir = tmp_path / "campaigns"
    shutil.copytree(REPO_CAMPAIGNS, campaigns_dir)
    res = local_resources(tmp_path, campaigns_dir, recordings_bucket=dg.ResourceDefinition.none_resource())
    loaded = dg.materialize([campaign_contacts, do_not_call_list], resources=res)
    meta = loaded.asset_materializations_for_node("campaign_contacts")[0].metadata
    assert (
        meta["demo-renewals/valid"].value,
        meta["demo-renewals/invalid"].value,
        meta["demo-renewals/duplicates"].value,
    ) == (9, 3, 1)
    assert "c-0010" in meta["rejected_rows"].value

    # Wednesday 15:00 UTC: 10:00 in New York, 07:00 in Los Angeles and 05:00 in Honolulu.
    dry = dg.materialize(
        [dialable_contacts],
        resources=res,
        run_config={"ops": {"dialable_contacts": {"config": {"at": "2026-11-25T15:00:00Z"}}}},
    )
    m = dry.asset_materializations_for_node("dialable_contacts")[0].metadata
    assert m["demo-renewals/would_dial"].value == 2  # the campaign's max_concurrent_calls
    assert m["tts_capacity_source"].value == "configured"  # the same limit the tick would use
    skipped = m["demo-renewals/skipped"].value
    assert skipped["do_not_call"] == 1 and skipped["outside_calling_window"] >= 3 and skipped["capacity"] >= 1
    assert "| c-0013 | +14155550113 | skip: do_not_call |" in m["explanation"].value  # from the registry file


def test_dialing_fails_fast_locally_naming_the_settings(tmp_path: Path) -> None:
    res = local_resources(
        tmp_path, REPO_CAMPAIGNS, livekit=LiveKitResource(), recordings_bucket=dg.ResourceDefinition.none_resource()
    )
    result = dg.materialize([dial_ledger], resources=res, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error.message
    assert "LIVEKIT_URL" in failure and "LIVEKIT_API_KEY" in failure and "LIVEKIT_API_SECRET" in failure


def test_a_real_tick_through_dagster_and_a_pause_job(tmp_path: Path, livekit_double: LiveKitDouble, bucket) -> None:
    # A zone where it is mid-afternoon right now, so the real clock is inside the window.
    now = datetime.now(UTC)
    zone = next(f"Etc/GMT{-off:+d}" for off in range(-12, 15) if 13 <= (now + timedelta(hours=off)).hour <= 16)
    ZoneInfo(zone)
    camp = campaign(id="live", max_concurrent_calls=2, contacts="live.csv")
    campaigns_dir = tmp_path / "campaigns"
    write_catalog(campaigns_dir, camp)
    (campaigns_dir / "live.csv").write_text(
        "contact_id,phone_number,time_zone\n" + "".join(f"l{i},+1212555{i:04d},{zone}\n" for i in range(1, 4))
    )
    lk = LiveKitResource(url=livekit_double.url, api_key=livekit_double.api_key, api_secret=livekit_double.api_secret)
    res = local_resources(tmp_path, campaigns_dir, livekit=lk, recordings_bucket=bucket)
    dg.materialize([campaign_contacts], resources=res)
    tick = dg.materialize([dial_ledger], resources=res, tags={"callcenter/domain": "dialing"})
    meta = tick.asset_materializations_for_node("dial_ledger")[0].metadata
    assert meta["live/dialed_this_tick"].value == 2 and meta["live/in_progress"].value == 2
    assert meta["tts_capacity_source"].value == "configured"  # the local stack has no Chatterbox pod
    creates = livekit_double.calls("AgentDispatchService", "CreateDispatch")
    assert sorted(parse_dispatch(c.message.metadata).contact_id for c in creates) == ["l1", "l2"]

    paused = campaign_control.execute_in_process(
        resources=res,
        run_config={"ops": {"change_campaign_state": {"config": {"campaign_id": "live", "action": "PAUSE"}}}},
    )
    assert paused.success
    store = SqliteDialStore(tmp_path / "data" / "dialing" / "ledger.sqlite3")
    try:
        assert store.campaign_state("live")[0] is CampaignState.PAUSED
    finally:
        store.close()


def test_gke_call_limit_follows_the_capacity_estimate() -> None:
    capacity = dialing.resources(Deployment.GKE)["call_capacity"]
    assert capacity.global_limit == 25  # docs/capacity.md: cap dialing at 25 until measured
    # ... and each tick reads the Chatterbox Service's measured capacity instead of the TTS guess.
    assert capacity.tts_metrics_urls == ["http://chatterbox-tts.call-center.svc.cluster.local:8880/metrics"]
    assert CallCapacity(stt_calls=50, llm_calls=40, tts_calls=30, recorder_calls=32, headroom=0.5).global_limit == 15


def test_local_code_location_dry_runs_and_refuses_to_dial(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gcs_emulator: str
) -> None:
    """The real local resource map: lists load, the dry run plans, the tick names LiveKit's settings."""
    for var in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET", "CALLCENTER_DIALING_DSN"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", "local")
    monkeypatch.setenv("CALLCENTER_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CALLCENTER_RECORDINGS_BUCKET", "recordings-local")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    import orchestration.definitions as module

    defs = importlib.reload(module).defs
    assert defs.get_job_def("load_campaigns").execute_in_process().success
    dry = defs.get_job_def("dialing_dry_run").execute_in_process(
        run_config={"ops": {"dialable_contacts": {"config": {"at": "2026-11-25T15:00:00Z"}}}}
    )
    assert dry.success
    meta = dry.asset_materializations_for_node("dialable_contacts")[0].metadata
    assert meta["demo-renewals/would_dial"].value == 1  # the local fleet carries one call

    tick = defs.get_job_def("dialing_tick").execute_in_process(raise_on_error=False)
    assert not tick.success
    message = tick.get_step_failure_events()[0].event_specific_data.error.message
    assert "LIVEKIT_URL, LIVEKIT_API_KEY, LIVEKIT_API_SECRET" in message
    assert tick.dagster_run.tags["callcenter/domain"] == "dialing"
