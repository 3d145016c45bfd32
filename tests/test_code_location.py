"""Load the whole code location with placeholder environment and assert its shape."""

from __future__ import annotations

import importlib

import dagster as dg
import pytest

GROUPS = {
    "rollout": {
        "namespace_and_secrets", "riva_stt", "vllm_llm", "chatterbox_tts", "redis", "livekit_server",
        "livekit_egress", "livekit_sip", "inbound_trunk", "outbound_trunk", "dispatch_rule", "agent_workers",
        "call_browser",
    },
    "dialing": {"campaign_contacts", "do_not_call_list", "dialable_contacts", "dial_ledger"},
    "postcall": {"call_transcripts", "call_analyses", "call_index"},
    "postcall_views": {"daily_call_outcomes", "call_sentiment", "agent_latency_percentiles"},
    "replay": {"call_replays"},
}
JOBS = {"rollout", "rollout_drift", "load_campaigns", "dialing_dry_run", "dialing_tick", "campaign_control",
        "postcall_calls", "postcall_views", "call_replay"}


def load(monkeypatch: pytest.MonkeyPatch, deployment: str) -> dg.Definitions:
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", deployment)
    import orchestration.definitions as module

    return importlib.reload(module).defs


@pytest.fixture
def repo(monkeypatch: pytest.MonkeyPatch) -> dg.RepositoryDefinition:
    return load(monkeypatch, "local").get_repository_def()


def test_asset_groups_hold_the_three_domains(repo: dg.RepositoryDefinition) -> None:
    graph = repo.asset_graph
    groups: dict[str, set[str]] = {}
    for key in graph.get_all_asset_keys():
        groups.setdefault(graph.get(key).group_name, set()).add(key.to_user_string())
    assert groups == GROUPS


def test_rollout_tiers_gate_each_other(repo: dg.RepositoryDefinition) -> None:
    graph = repo.asset_graph

    def upstream(name: str) -> set[str]:
        return {k.to_user_string() for k in graph.get(dg.AssetKey(name)).parent_keys}

    def ancestors(name: str) -> set[str]:
        seen, todo = set(), [name]
        while todo:
            for parent in upstream(todo.pop()):
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    # GPU inference before LiveKit, LiveKit before SIP trunks, trunks before the agent.
    assert {"riva_stt", "vllm_llm", "chatterbox_tts"} <= ancestors("livekit_server")
    assert {"livekit_sip", "namespace_and_secrets"} <= ancestors("inbound_trunk")
    assert {"dispatch_rule", "livekit_server"} <= ancestors("agent_workers")
    assert ancestors("call_index") >= {"call_transcripts", "call_analyses"}


def test_gates_are_blocking_checks(repo: dg.RepositoryDefinition) -> None:
    graph = repo.asset_graph
    blocking = {k.asset_key.to_user_string() for k in graph.asset_check_keys if graph.get_check_spec(k).blocking}
    assert {"namespace_and_secrets", "riva_stt", "vllm_llm", "chatterbox_tts", "livekit_server"} <= blocking


def test_jobs_schedules_and_sensors(repo: dg.RepositoryDefinition) -> None:
    assert {j.name for j in repo.get_all_jobs()} >= JOBS
    assert {s.name for s in repo.schedule_defs} == {
        "dialing_tick_every_minute",
        "postcall_views_schedule",
        "postcall_reconcile_schedule",
        "postcall_pending_schedule",
    }
    assert {s.name for s in repo.sensor_defs} == {
        "call_recordings_sensor",
        "late_recordings_sensor",
        "failed_batches_sensor",
        "call_analyzed_webhooks",
    }
    # The dialing schedule must never start itself: dialing people is an operator's decision.
    dialing = repo.get_schedule_def("dialing_tick_every_minute")
    assert dialing.default_status == dg.DefaultScheduleStatus.STOPPED
    for job in ("rollout", "dialing_tick", "postcall_calls"):
        assert repo.get_job(job).tags.get("callcenter/domain") in {"rollout", "dialing", "postcall"}


@pytest.mark.parametrize("deployment", ["local", "gke"])
def test_every_deployment_provides_every_resource_assets_need(monkeypatch: pytest.MonkeyPatch, deployment: str) -> None:
    defs = load(monkeypatch, deployment)
    repo = defs.get_repository_def()  # raises if an asset needs a resource key the map lacks
    needed = set()
    for asset in repo.assets_defs_by_key.values():
        needed |= set(asset.required_resource_keys)
    assert needed - {"io_manager"} <= set(defs.resources)  # io_manager: Dagster's default
    assert {"recordings_bucket", "livekit"} <= set(defs.resources)


def test_unknown_deployment_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", "staging")
    import orchestration.definitions as module

    with pytest.raises(ValueError, match="CALLCENTER_DEPLOYMENT='staging'.*local, gke"):
        importlib.reload(module)
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", "local")
    importlib.reload(module)
