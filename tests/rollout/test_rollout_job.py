"""The ``rollout`` job end to end: the real kubernetes client against the kmock API server
double, livekit-api against the LiveKit Twirp double, the probes against protocol doubles."""

from __future__ import annotations

from pathlib import Path

import pytest
from livekit.protocol import sip

from orchestration.defs.rollout.manifests import group_by_asset, render_overlay
from tests.rollout.conftest import (
    check_evaluations,
    materialization_metadata,
    materialized,
    run_rollout,
)
from tests.rollout.kube_double import APPLY_CONTENT_TYPE, request_body

ALL_ASSETS = {
    "namespace_and_secrets",
    "riva_stt",
    "vllm_llm",
    "chatterbox_tts",
    "redis",
    "livekit_server",
    "livekit_egress",
    "livekit_sip",
    "inbound_trunk",
    "outbound_trunk",
    "dispatch_rule",
    "agent_workers",
    "call_browser",
}
DOWNSTREAM_OF_INFERENCE = ALL_ASSETS - {"namespace_and_secrets", "riva_stt", "vllm_llm", "chatterbox_tts"}


def diff_lines(diff: str, sign: str) -> list[str]:
    """The added (+) or removed (-) lines of a unified diff, stripped of YAML indentation."""
    return [
        line[1:].strip().removeprefix("- ")
        for line in diff.splitlines()
        if line.startswith(sign) and not line.startswith(sign * 3)
    ]


def rendered(manifests: Path, overlay: str = "test") -> list[dict]:
    return render_overlay(manifests / "overlays" / overlay)


def test_fresh_rollout_applies_every_rendered_object_and_passes_every_gate(
    cluster, seed_secrets, make_resources, manifests, livekit_double, riva, openai_double
):
    seed_secrets()
    result = run_rollout(make_resources())

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert result.dagster_run.tags["callcenter/domain"] == "rollout"
    assert materialized(result) == ALL_ASSETS
    checks = check_evaluations(result)
    failed = {k: e.description for k, e in checks.items() if not e.passed}
    assert not failed

    # Exactly what the manifests render was applied: one server-side apply per object,
    # under our field manager, with the rendered object as the body.
    applies = [r for r in cluster.writes()]
    assert all(r.method == "PATCH" for r in applies)
    assert {r.headers["Content-Type"] for r in applies} == {APPLY_CONTENT_TYPE}
    assert {r.params["fieldManager"] for r in applies} == {"callcenter-rollout"}
    assert not [r for r in applies if "force" in r.params]  # never takes another manager's field over
    sent = sorted((request_body(r) for r in applies), key=lambda o: (o["kind"], o["metadata"]["name"]))
    want = sorted(rendered(manifests), key=lambda o: (o["kind"], o["metadata"]["name"]))
    assert sent == want

    # ... and it is now in the cluster, owned by our manager.
    deployment = cluster.get("apps/v1", "Deployment", "call-center", "vllm")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.8.5.post1"
    assert deployment["metadata"]["managedFields"][0]["manager"] == "callcenter-rollout"

    # Materializations say what changed, which images, how long.
    vllm_meta = materialization_metadata(result, "vllm_llm")
    assert vllm_meta["summary"] == "2 created"
    assert "image: vllm/vllm-openai:v0.8.5.post1" in diff_lines(vllm_meta["diff"], "+")
    assert vllm_meta["images"] == {"Deployment/vllm/vllm": "vllm/vllm-openai:v0.8.5.post1"}
    assert vllm_meta["apply_seconds"] >= 0

    # The gates really asked the services.
    assert checks["riva_stt:rolled_out_and_answering"].metadata["transcript"].value == riva.transcript
    assert riva.requests and riva.requests[-1].config.sample_rate_hertz == 16000
    assert any(kind == "completions" and body["max_tokens"] == 1 for kind, body in openai_double.requests)
    assert "synthesis_ms" in checks["chatterbox_tts:rolled_out_and_answering"].metadata
    assert livekit_double.calls("RoomService", "ListRooms")
    assert checks["agent_workers:rolled_out_and_answering"].metadata["registered_pods"].value == "agent-7d9f8-0"

    # SIP: one trunk each, Twilio's ranges, credentials from the Secret, a per-call room rule.
    (inbound,) = livekit_double.inbound_trunks.values()
    assert inbound.name == "twilio-inbound" and list(inbound.numbers) == ["+15550100", "+15550101"]
    assert "54.172.60.0/30" in inbound.allowed_addresses
    (outbound,) = livekit_double.outbound_trunks.values()
    assert (outbound.address, outbound.auth_username, outbound.auth_password) == (
        "callcenter.pstn.twilio.com",
        "callcenter",
        "twilio-test-password",
    )
    (rule,) = livekit_double.dispatch_rules.values()
    assert list(rule.trunk_ids) == [inbound.sip_trunk_id]
    assert rule.rule.dispatch_rule_individual.room_prefix == "call-"
    assert [a.agent_name for a in rule.room_config.agents] == ["call-center-agent"]
    assert "twilio-test-password" not in str(materialization_metadata(result, "outbound_trunk"))


def test_rerun_with_no_change_applies_nothing_and_says_so(cluster, seed_secrets, make_resources, livekit_double):
    seed_secrets()
    assert run_rollout(make_resources()).success
    cluster.clear_requests()
    sip_writes_before = [r.method for r in livekit_double.requests if r.service == "SIP" and not r.method.startswith("List")]

    result = run_rollout(make_resources())

    assert result.success
    assert cluster.writes() == []
    for asset in ("namespace_and_secrets", "riva_stt", "vllm_llm", "livekit_server", "agent_workers"):
        meta = materialization_metadata(result, asset)
        assert meta["summary"].startswith("no change"), meta["summary"]
        assert meta["changed_objects"] == 0
        assert meta["diff"] == "no change"
    for asset in ("inbound_trunk", "outbound_trunk", "dispatch_rule"):
        assert materialization_metadata(result, asset)["action"] == "unchanged"
    sip_writes_after = [r.method for r in livekit_double.requests if r.service == "SIP" and not r.method.startswith("List")]
    assert sip_writes_after == sip_writes_before


def test_one_image_changed_reapplies_only_that_deployment(cluster, seed_secrets, make_resources, manifests):
    seed_secrets()
    assert run_rollout(make_resources()).success
    cluster.clear_requests()
    changed = manifests / "overlays" / "newer-vllm"
    changed.mkdir()
    (changed / "kustomization.yaml").write_text(
        "resources: [../../base]\nimages:\n  - name: vllm/vllm-openai\n    newTag: v0.9.0\n"
    )

    result = run_rollout(make_resources(overlay="newer-vllm"))

    assert result.success
    writes = cluster.writes()
    assert [(r.method, r.url.path) for r in writes] == [
        ("PATCH", "/apis/apps/v1/namespaces/call-center/deployments/vllm")
    ]
    assert request_body(writes[0])["spec"]["template"]["spec"]["containers"][0]["image"] == "vllm/vllm-openai:v0.9.0"
    meta = materialization_metadata(result, "vllm_llm")
    assert meta["summary"] == "1 configured, 1 unchanged"
    assert diff_lines(meta["diff"], "-") == ["image: vllm/vllm-openai:v0.8.5.post1"]
    assert diff_lines(meta["diff"], "+") == ["image: vllm/vllm-openai:v0.9.0"]
    assert meta["images"] == {"Deployment/vllm/vllm": "vllm/vllm-openai:v0.9.0"}
    live = cluster.get("apps/v1", "Deployment", "call-center", "vllm")
    assert live["metadata"]["generation"] == 2
    assert live["status"]["observedGeneration"] == 2
    gate = check_evaluations(result)["vllm_llm:rolled_out_and_answering"]
    assert gate.passed
    assert "generation 2" in gate.metadata["workloads"].value["Deployment/call-center/vllm"]


def test_inference_never_ready_keeps_everything_downstream_unmaterialized(
    cluster, seed_secrets, make_resources, livekit_double
):
    seed_secrets()
    cluster.never_ready["vllm"] = "CrashLoopBackOff"
    cluster.pod_events["vllm"] = [
        "0/3 nodes are available: 3 Insufficient nvidia.com/gpu",
        "Back-off restarting failed container vllm in pod vllm-7d9f8-0",
    ]

    result = run_rollout(make_resources(rollout_timeout_s=0.5))

    assert not result.success
    assert materialized(result) == {"namespace_and_secrets", "riva_stt", "vllm_llm", "chatterbox_tts"}
    assert not materialized(result) & DOWNSTREAM_OF_INFERENCE
    gate = check_evaluations(result)["vllm_llm:rolled_out_and_answering"]
    assert not gate.passed
    assert "Deployment/call-center/vllm: 0/1 ready, 0/1 available" in gate.description
    assert "unhealthy pod vllm-7d9f8-0" in gate.description
    assert "CrashLoopBackOff" in gate.description
    assert "Back-off restarting failed container vllm" in gate.description
    assert gate.metadata["unhealthy_pods"].value[0]["pod"] == "vllm-7d9f8-0"
    # Nothing LiveKit-side was touched, and no LiveKit object was applied.
    assert not [r for r in livekit_double.requests if r.service == "SIP"]
    assert cluster.get("apps/v1", "Deployment", "call-center", "livekit-server") is None


def test_missing_secret_fails_the_gate_naming_it(cluster, seed_secrets, make_resources):
    seed_secrets(skip=("hf-token",))

    result = run_rollout(make_resources())

    assert not result.success
    assert materialized(result) == {"namespace_and_secrets"}
    gate = check_evaluations(result)["namespace_and_secrets:referenced_secrets_exist"]
    assert not gate.passed
    assert "Secret call-center/hf-token (needed by Deployment/call-center/vllm)" in gate.description
    assert "livekit-api-keys" not in gate.description
    assert cluster.get("apps/v1", "Deployment", "call-center", "vllm") is None


def test_existing_trunks_are_updated_never_duplicated(cluster, seed_secrets, make_resources, livekit_double):
    seed_secrets()
    livekit_double.inbound_trunks["ST_old"] = sip.SIPInboundTrunkInfo(
        sip_trunk_id="ST_old", name="twilio-inbound", numbers=["+15550999"], allowed_addresses=["0.0.0.0/0"]
    )
    livekit_double.outbound_trunks["ST_out"] = sip.SIPOutboundTrunkInfo(
        sip_trunk_id="ST_out", name="twilio-outbound", address="old.pstn.twilio.com"
    )
    livekit_double.inbound_trunks["ST_other"] = sip.SIPInboundTrunkInfo(sip_trunk_id="ST_other", name="someone-else")

    result = run_rollout(make_resources())

    assert result.success
    assert set(livekit_double.inbound_trunks) == {"ST_old", "ST_other"}
    assert list(livekit_double.inbound_trunks["ST_old"].numbers) == ["+15550100", "+15550101"]
    assert "0.0.0.0/0" not in livekit_double.inbound_trunks["ST_old"].allowed_addresses
    assert livekit_double.inbound_trunks["ST_other"].name == "someone-else"
    assert set(livekit_double.outbound_trunks) == {"ST_out"}
    assert livekit_double.outbound_trunks["ST_out"].address == "callcenter.pstn.twilio.com"
    assert not livekit_double.calls("SIP", "CreateSIPInboundTrunk")
    assert not livekit_double.calls("SIP", "CreateSIPOutboundTrunk")
    assert len(livekit_double.calls("SIP", "UpdateSIPInboundTrunk")) == 1
    assert materialization_metadata(result, "inbound_trunk")["action"] == "updated"
    assert materialization_metadata(result, "inbound_trunk")["id"] == "ST_old"
    (rule,) = livekit_double.dispatch_rules.values()
    assert list(rule.trunk_ids) == ["ST_old"]


def test_without_a_cluster_the_rollout_fails_fast_naming_the_setting(make_resources):
    from orchestration.defs.rollout.kube import KubernetesResource

    resources = make_resources()
    resources["kubernetes"] = KubernetesResource()

    result = run_rollout(resources)

    assert not result.success
    assert materialized(result) == set()
    failures = [e for e in result.all_events if e.is_step_failure]
    assert "CALLCENTER_KUBE_CONTEXT" in failures[0].step_failure_data.error.message


def test_drift_job_reports_a_hand_edit(cluster, seed_secrets, make_resources):
    seed_secrets()
    assert run_rollout(make_resources()).success
    edited = cluster.get("apps/v1", "Deployment", "call-center", "redis") or cluster.get(
        "apps/v1", "StatefulSet", "call-center", "redis"
    )
    edited["spec"]["template"]["spec"]["containers"][0]["image"] = "redis:6"
    cluster.put(edited)
    cluster.clear_requests()

    result = run_rollout(make_resources(), job="rollout_drift")

    assert result.success  # drift is a warning, not a failed run
    assert cluster.writes() == []
    checks = check_evaluations(result)
    assert not checks["redis:matches_manifests"].passed
    assert "StatefulSet/redis (differs)" in checks["redis:matches_manifests"].description
    diff = checks["redis:matches_manifests"].metadata["diff"].value
    assert diff_lines(diff, "-") == ["image: redis:6"]
    assert diff_lines(diff, "+") == ["image: redis:7.4.1"]
    assert all(e.passed for k, e in checks.items() if k != "redis:matches_manifests")


@pytest.mark.parametrize("overlay", ["test"])
def test_grouping_partitions_the_render(manifests, overlay):
    objects = rendered(manifests, overlay)
    groups = group_by_asset(objects)
    assert sum(len(g) for g in groups.values()) == len(objects)
    assert {o["kind"] for o in groups["namespace_and_secrets"]} == {"Namespace", "ServiceAccount"}
    assert {o["kind"] for o in groups["agent_workers"]} == {"Deployment", "Service", "HorizontalPodAutoscaler"}


def test_missing_rbac_fails_naming_the_object_and_the_rbac_file(cluster, seed_secrets, make_resources):
    seed_secrets()
    cluster.api.forbidden.add("namespaces")  # a namespaced Role cannot grant the cluster-scoped Namespace

    result = run_rollout(make_resources())

    assert not result.success
    assert materialized(result) == set()
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    message = failure.step_failure_data.error.message
    assert "may not get Namespace/call-center" in message
    assert "manifests/bootstrap/rollout-rbac.yaml" in message


def test_agent_gate_fails_when_no_worker_registered(cluster, seed_secrets, make_resources):
    seed_secrets()
    cluster.logs["agent"] = "starting worker\nfailed to connect to livekit: 401 unauthorized\n"

    result = run_rollout(make_resources())

    assert not result.success
    gate = check_evaluations(result)["agent_workers:rolled_out_and_answering"]
    assert not gate.passed
    assert "no agent worker has registered with LiveKit" in gate.description
    assert "agent-7d9f8-0" in gate.description
