"""The rollout against a real kube-apiserver and etcd (devstack/control_plane.py): what the
API double cannot say. The server validates every object against its schema or CRD, keeps
field ownership per manager, refuses conflicting and immutable changes, and writes its own
managedFields. No controller or kubelet runs: the health gates are driven by status written
as they would write it (tests/rollout/kubelet.py)."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import ResourceNotFoundError

from devstack.control_plane import CONTEXT, NOT_INSTALLABLE, REPO_ROOT, ControlPlane
from orchestration.defs.rollout.apply import apply_objects
from orchestration.defs.rollout.manifests import object_ref
from orchestration.defs.rollout.manifests import render_overlay as rollout_render
from tests.manifests.render import OVERLAYS, render_bootstrap
from tests.rollout.conftest import check_evaluations, materialization_metadata, materialized, run_rollout
from tests.rollout.kubelet import Kubelet
from tests.rollout.test_real_manifests import _with_site_values
from tests.rollout.test_rollout_job import diff_lines

pytestmark = pytest.mark.xdist_group("real_apiserver")

FIRST_TIERS = ["namespace_and_secrets", "riva_stt", "vllm_llm", "chatterbox_tts"]
GPU_WORKLOADS = {"riva-stt", "vllm", "chatterbox-tts"}
# The agent's gate reads pod logs, which the API server fetches from a kubelet: none runs here.
UP_TO_THE_TRUNKS = [
    *FIRST_TIERS,
    "redis",
    "livekit_server",
    "livekit_egress",
    "livekit_sip",
    "inbound_trunk",
    "outbound_trunk",
    "dispatch_rule",
]
LIVEKIT_SIDE = {"livekit_egress", "livekit_sip", "inbound_trunk", "outbound_trunk", "dispatch_rule"}


def step_failures(result) -> dict[str, str]:
    return {e.step_key: e.step_failure_data.error.message for e in result.all_events if e.is_step_failure}


def add_overlay(manifests: Path, name: str, base: str, body: str) -> str:
    overlay = manifests / "overlays" / name
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(f"resources: [../{base}]\n{body}")
    return name


def live_objects(api: Any, namespace: str) -> dict[str, str]:
    """``Kind/name`` -> resourceVersion of every Deployment, Service and ServiceAccount there."""
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    out = {}
    for kind, items in (
        ("Deployment", apps.list_namespaced_deployment(namespace).items),
        ("Service", core.list_namespaced_service(namespace).items),
        ("ServiceAccount", core.list_namespaced_service_account(namespace).items),
    ):
        for item in items:
            out[f"{kind}/{item.metadata.name}"] = item.metadata.resource_version
    return out


def hand_edit_image(api: Any, namespace: str, image: str) -> None:
    """``kubectl set image`` / ``kubectl edit``: an update under another field manager."""
    client.AppsV1Api(api).patch_namespaced_deployment(
        "vllm",
        namespace,
        {"spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": image}]}}}},
        field_manager="kubectl-edit",
    )


def test_the_control_plane_is_the_pinned_kubernetes(real_apiserver: ControlPlane) -> None:
    go_mod = (REPO_ROOT / "scripts" / "kube-build" / "go.mod").read_text()
    (pinned,) = re.findall(r"^\s*k8s\.io/kubernetes (v\S+)$", go_mod, re.MULTILINE)
    assert real_apiserver.version()["gitVersion"] == pinned


def test_apply_then_reapply_changes_nothing_then_a_change_is_applied_with_its_diff(
    real_namespace, make_real_resources, real_kube_api, manifests
) -> None:
    ns = real_namespace
    with Kubelet(real_kube_api, ns) as kubelet:
        kubelet.ready |= GPU_WORKLOADS
        first = run_rollout(make_real_resources(), assets=FIRST_TIERS)
        assert first.success, step_failures(first) or check_evaluations(first)
        assert materialized(first) == set(FIRST_TIERS)
        assert materialization_metadata(first, "vllm_llm")["summary"] == "2 created"
        deployment = client.AppsV1Api(real_kube_api).read_namespaced_deployment("vllm", ns)
        assert ("callcenter-rollout", "Apply") in {(m.manager, m.operation) for m in deployment.metadata.managed_fields}
        before = live_objects(real_kube_api, ns)

        again = run_rollout(make_real_resources(), assets=FIRST_TIERS)

        assert again.success, step_failures(again)
        for asset in FIRST_TIERS:
            meta = materialization_metadata(again, asset)
            assert meta["summary"].startswith("no change"), (asset, meta["summary"], meta["diff"])
            assert meta["diff"] == "no change"
        # The server's own managedFields (list keys with defaulted protocol, quantities it
        # normalised) read as no change, and nothing was written.
        assert live_objects(real_kube_api, ns) == before

        newer = add_overlay(manifests, "newer-vllm", ns, "images:\n  - name: vllm/vllm-openai\n    newTag: v0.9.0\n")
        changed = run_rollout(make_real_resources(overlay=newer), assets=FIRST_TIERS)

    assert changed.success, step_failures(changed)
    meta = materialization_metadata(changed, "vllm_llm")
    assert meta["summary"] == "1 configured, 1 unchanged"
    assert diff_lines(meta["diff"], "-") == ["image: vllm/vllm-openai:v0.8.5.post1"]
    assert diff_lines(meta["diff"], "+") == ["image: vllm/vllm-openai:v0.9.0"]
    live = client.AppsV1Api(real_kube_api).read_namespaced_deployment("vllm", ns)
    assert live.spec.template.spec.containers[0].image == "vllm/vllm-openai:v0.9.0"
    assert live.metadata.generation == 2
    assert {k: v for k, v in live_objects(real_kube_api, ns).items() if v != before[k]} == {
        "Deployment/vllm": live.metadata.resource_version
    }


def test_a_field_another_manager_owns_fails_the_apply_naming_the_field_and_the_manager(
    real_namespace, make_real_resources, real_kube_api
) -> None:
    ns = real_namespace
    with Kubelet(real_kube_api, ns) as kubelet:
        kubelet.ready |= GPU_WORKLOADS
        assert run_rollout(make_real_resources(), assets=FIRST_TIERS).success
        hand_edit_image(real_kube_api, ns, "vllm/vllm-openai:hotfix")

        result = run_rollout(make_real_resources(), assets=FIRST_TIERS)

    assert not result.success
    failures = step_failures(result)
    assert list(failures) == ["vllm_llm"]
    message = failures["vllm_llm"]
    assert f"Deployment/{ns}/vllm" in message
    assert '.spec.template.spec.containers[name="vllm"].image' in message
    assert "kubectl-edit" in message
    assert "--force-conflicts" in message  # how to take the field over deliberately
    # nothing was forced: the other manager's value stands
    live = client.AppsV1Api(real_kube_api).read_namespaced_deployment("vllm", ns)
    assert live.spec.template.spec.containers[0].image == "vllm/vllm-openai:hotfix"


@pytest.mark.parametrize(
    ("patch", "kind", "field"),
    [
        (
            "patches:\n  - target: {kind: Deployment, name: vllm}\n    patch: |-\n"
            "      - {op: add, path: /spec/selector/matchLabels/track, value: stable}\n"
            "      - {op: add, path: /spec/template/metadata/labels/track, value: stable}\n",
            "Deployment",
            "spec.selector",
        ),
        (
            "patches:\n  - target: {kind: Service, name: vllm}\n    patch: |-\n"
            "      - {op: add, path: /spec/clusterIP, value: None}\n",
            "Service",
            "spec.clusterIP",
        ),
    ],
    ids=["deployment-selector", "service-headless"],
)
def test_an_immutable_field_change_fails_naming_the_object_and_the_field(
    patch, kind, field, real_namespace, make_real_resources, real_kube_api, manifests
) -> None:
    ns = real_namespace
    with Kubelet(real_kube_api, ns) as kubelet:
        kubelet.ready |= GPU_WORKLOADS
        assert run_rollout(make_real_resources(), assets=FIRST_TIERS).success
        overlay = add_overlay(manifests, f"immutable-{kind.lower()}", ns, patch)

        result = run_rollout(make_real_resources(overlay=overlay), assets=FIRST_TIERS)

    assert not result.success
    message = step_failures(result)["vllm_llm"]
    assert f"{kind}/{ns}/vllm" in message
    assert field in message
    assert "immutable" in message
    assert "delete" in message  # what to do: delete and recreate that object


def test_an_unknown_field_in_the_manifests_fails_naming_it(
    real_namespace, make_real_resources, real_kube_api, manifests
) -> None:
    ns = real_namespace
    overlay = add_overlay(
        manifests,
        "typo",
        ns,
        "patches:\n  - target: {kind: Deployment, name: vllm}\n    patch: |-\n"
        "      - {op: add, path: /spec/template/spec/containers/0/readinesProbe, value: {tcpSocket: {port: 8000}}}\n",
    )
    with Kubelet(real_kube_api, ns) as kubelet:
        kubelet.ready |= GPU_WORKLOADS
        result = run_rollout(make_real_resources(overlay=overlay), assets=FIRST_TIERS)

    assert not result.success
    message = step_failures(result)["vllm_llm"]
    assert f"Deployment/{ns}/vllm" in message
    assert "readinesProbe" in message
    assert (
        client.AppsV1Api(real_kube_api).list_namespaced_deployment(ns, field_selector="metadata.name=vllm").items == []
    )


def test_drift_job_reports_a_hand_edit_and_a_field_the_manifests_dropped(
    real_namespace, make_real_resources, real_kube_api, manifests
) -> None:
    ns = real_namespace
    with Kubelet(real_kube_api, ns) as kubelet:
        kubelet.ready |= GPU_WORKLOADS
        assert run_rollout(make_real_resources(), assets=FIRST_TIERS).success
    clean = check_evaluations(run_rollout(make_real_resources(), job="rollout_drift"))
    for asset in FIRST_TIERS:
        assert clean[f"{asset}:matches_manifests"].passed, clean[f"{asset}:matches_manifests"].description

    hand_edit_image(real_kube_api, ns, "vllm/vllm-openai:hotfix")
    result = run_rollout(make_real_resources(), job="rollout_drift")

    assert result.success  # drift is a warning
    checks = check_evaluations(result)
    vllm = checks["vllm_llm:matches_manifests"]
    assert not vllm.passed
    assert "Deployment/vllm (differs)" in vllm.description
    diff = vllm.metadata["diff"].value
    assert diff_lines(diff, "-") == ["image: vllm/vllm-openai:hotfix"]
    assert diff_lines(diff, "+") == ["image: vllm/vllm-openai:v0.8.5.post1"]
    assert checks["riva_stt:matches_manifests"].passed

    no_ports = add_overlay(
        manifests,
        "no-ports",
        ns,
        "patches:\n  - target: {kind: Deployment, name: riva-stt}\n    patch: |-\n"
        "      - {op: remove, path: /spec/template/spec/containers/0/ports}\n",
    )
    dropped = run_rollout(make_real_resources(overlay=no_ports), job="rollout_drift")
    assert dropped.success, step_failures(dropped)
    riva = check_evaluations(dropped)["riva_stt:matches_manifests"]
    assert not riva.passed
    removed = [line for line in riva.metadata["diff"].value.splitlines() if "applied before" in line]
    assert removed == [
        '- spec.template.spec.containers[{"name":"riva-stt"}].ports   (applied before, no longer in the manifests)'
    ]


def test_gpu_never_ready_blocks_livekit_and_livekit_not_ready_blocks_the_trunks(
    real_namespace, make_real_resources, real_kube_api, livekit_double
) -> None:
    ns = real_namespace
    apps = client.AppsV1Api(real_kube_api)
    with Kubelet(real_kube_api, ns) as kubelet:
        kubelet.ready |= {"riva-stt", "chatterbox-tts"}
        kubelet.failing["vllm"] = "CrashLoopBackOff"

        gpu_down = run_rollout(make_real_resources(rollout_timeout_s=1.5), assets=UP_TO_THE_TRUNKS)

        assert not gpu_down.success
        assert materialized(gpu_down) == set(FIRST_TIERS)
        gate = check_evaluations(gpu_down)["vllm_llm:rolled_out_and_answering"]
        assert not gate.passed
        assert f"Deployment/{ns}/vllm: 0/1 ready, 0/1 available" in gate.description
        assert "unhealthy pod vllm-7d9f8-0" in gate.description
        assert "CrashLoopBackOff" in gate.description
        assert "Back-off restarting failed container vllm" in gate.description
        with pytest.raises(ApiException) as missing:
            apps.read_namespaced_deployment("livekit-server", ns)
        assert missing.value.status == 404
        assert not [r for r in livekit_double.requests if r.service == "SIP"]

        kubelet.failing.clear()
        kubelet.ready |= {"vllm", "redis", "livekit-egress", "livekit-sip"}  # LiveKit itself never

        livekit_down = run_rollout(make_real_resources(rollout_timeout_s=1.5), assets=UP_TO_THE_TRUNKS)

        assert not livekit_down.success
        assert {"redis", "livekit_server"} <= materialized(livekit_down)
        assert not materialized(livekit_down) & LIVEKIT_SIDE
        gate = check_evaluations(livekit_down)["livekit_server:rolled_out_and_answering"]
        assert not gate.passed
        assert f"Deployment/{ns}/livekit-server: 0/2 ready" in gate.description
        assert not [r for r in livekit_double.requests if r.service == "SIP"]

        kubelet.ready.add("livekit-server")
        all_up = run_rollout(make_real_resources(rollout_timeout_s=5.0), assets=UP_TO_THE_TRUNKS)

    assert all_up.success, step_failures(all_up) or {
        k: e.description for k, e in check_evaluations(all_up).items() if not e.passed
    }
    assert materialized(all_up) >= LIVEKIT_SIDE
    (outbound,) = livekit_double.outbound_trunks.values()
    assert outbound.auth_password == "twilio-test-password"  # read from the Secret on the real server


def _api_group(obj: dict[str, Any]) -> str:
    return obj["apiVersion"].rpartition("/")[0]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_the_overlay_renders_passes_a_server_side_dry_run(
    overlay: str, real_kube_api, tmp_path: Path
) -> None:
    manifests = _with_site_values(overlay, tmp_path)
    objects = rollout_render(manifests / "overlays" / overlay)
    dyn = DynamicClient(real_kube_api)
    core = client.CoreV1Api(real_kube_api)
    for namespace in sorted({o["metadata"]["namespace"] for o in objects if o["metadata"].get("namespace")}):
        try:  # a dry run of the Namespace object does not create it; its contents need it
            core.create_namespace({"metadata": {"name": namespace}})
        except ApiException as e:
            assert e.status == 409, e.body

    refused: dict[str, str] = {}
    not_served: set[tuple[str, str]] = set()
    for obj in objects:
        try:
            resource = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        except ResourceNotFoundError:
            not_served.add((_api_group(obj), obj["kind"]))
            continue
        try:
            resource.server_side_apply(
                body=obj,
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                field_manager="callcenter-rollout",
                dry_run="All",
                query_params=[("fieldValidation", "Strict")],
            )
        except ApiException as e:
            refused[object_ref(obj)] = e.body if isinstance(e.body, str) else str(e)

    assert refused == {}
    # Only what no Go module here defines goes unchecked (control_plane.NOT_INSTALLABLE says why).
    assert not_served <= set(NOT_INSTALLABLE), not_served - set(NOT_INSTALLABLE)
    checked = {o["kind"] for o in objects if (_api_group(o), o["kind"]) not in not_served}
    assert {"Deployment", "Service", "NetworkPolicy", "PodDisruptionBudget"} <= checked
    if overlay == "gke":
        assert {"Gateway", "GatewayClass", "HTTPRoute"} <= checked  # the Gateway API CRDs did their part


def test_the_gke_overlay_applied_twice_is_unchanged_the_second_time(real_kube_api, tmp_path: Path) -> None:
    """The real manifests through the rollout's own apply: whatever the server defaults or
    normalises in them (ports, quantities, probes, volumes) reads as no change on the next run."""
    manifests = _with_site_values("gke", tmp_path)
    objects = [
        o for o in rollout_render(manifests / "overlays" / "gke") if (_api_group(o), o["kind"]) not in NOT_INSTALLABLE
    ]
    dyn = DynamicClient(real_kube_api)

    first = apply_objects(dyn, objects, "callcenter-rollout", 10.0)
    second = apply_objects(dyn, objects, "callcenter-rollout", 10.0)

    assert {o.action for o in first.outcomes} <= {"created", "configured", "skipped"}
    assert {o.ref: o.diff for o in second.outcomes if o.action != "unchanged" and o.action != "skipped"} == {}
    assert second.summary().startswith("no change")


def test_the_bootstrap_render_passes_a_server_side_dry_run(real_kube_api) -> None:
    dyn = DynamicClient(real_kube_api)
    refused = {}
    for obj in render_bootstrap():
        try:
            dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).server_side_apply(
                body=obj,
                name=obj["metadata"]["name"],
                namespace=obj["metadata"].get("namespace"),
                field_manager="callcenter-bootstrap",
                dry_run="All",
                query_params=[("fieldValidation", "Strict")],
            )
        except ApiException as e:
            if obj["kind"] != "Namespace" and e.status == 404 and "namespaces" in str(e.body):
                continue  # its Namespace is only dry-run too; the overlay test covers the rest
            refused[object_ref(obj)] = str(e.body)
    assert refused == {}


def test_the_rollout_service_account_may_read_and_apply_every_object_the_gke_overlay_renders(
    real_apiserver: ControlPlane, real_kube_api, tmp_path: Path
) -> None:
    """manifests/bootstrap's RBAC, bound for real, asked by the API server's own authorizer:
    Dagster's service account reads and server-side applies (dry run) every object."""
    from kubernetes import config

    dyn = DynamicClient(real_kube_api)
    for obj in render_bootstrap():  # as the cluster admin, once before Dagster
        dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"]).server_side_apply(
            body=obj,
            name=obj["metadata"]["name"],
            namespace=obj["metadata"].get("namespace"),
            field_manager="callcenter-bootstrap",
        )
    manifests = _with_site_values("gke", tmp_path)
    objects = rollout_render(manifests / "overlays" / "gke")
    rollout_sa = config.new_client_from_config(config_file=str(real_apiserver.kubeconfig))
    rollout_sa.set_default_header("Impersonate-User", "system:serviceaccount:call-center:dagster")
    try:
        as_rollout = DynamicClient(rollout_sa)
        forbidden: dict[str, str] = {}
        for obj in objects:
            if (_api_group(obj), obj["kind"]) in NOT_INSTALLABLE or obj["kind"] == "Secret":
                continue  # Secrets are never applied (apply.py)
            meta = obj["metadata"]
            resource = as_rollout.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            attempts = {
                "get": functools.partial(resource.get, name=meta["name"], namespace=meta.get("namespace")),
                "apply": functools.partial(
                    resource.server_side_apply,
                    body=obj,
                    name=meta["name"],
                    namespace=meta.get("namespace"),
                    field_manager="callcenter-rollout",
                    dry_run="All",
                ),
            }
            for verb, call in attempts.items():
                try:
                    call()
                except ApiException as e:
                    if e.status == 403:
                        forbidden[f"{verb} {object_ref(obj)}"] = e.summary() if hasattr(e, "summary") else str(e.body)
                    elif not (verb == "get" and e.status == 404):
                        raise
        # the impersonation is real: what the RBAC does not grant is refused
        with pytest.raises(ApiException) as refused:
            as_rollout.resources.get(api_version="v1", kind="Secret").get(namespace="kube-system")
        assert refused.value.status == 403
    finally:
        rollout_sa.close()
    assert forbidden == {}


def test_the_local_stack_rollout_applies_the_dev_overlay_to_its_api_server(
    real_apiserver: ControlPlane, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As the local stack runs it (devstack sets KUBECONFIG and CALLCENTER_KUBE_CONTEXT): the local
    deployment's rollout resources apply the dev overlay's first tier to the real API server."""
    import dagster as dg
    from kubernetes import client, config

    from orchestration.defs.rollout import resources as rollout_resources
    from orchestration.defs.rollout.assets import namespace_and_secrets
    from orchestration.deployment import Deployment

    monkeypatch.setenv("KUBECONFIG", str(real_apiserver.kubeconfig))
    monkeypatch.setenv("CALLCENTER_KUBE_CONTEXT", CONTEXT)
    result = dg.materialize(
        [namespace_and_secrets], resources=rollout_resources(Deployment.LOCAL), instance=dg.DagsterInstance.ephemeral()
    )
    assert result.success
    api = config.new_client_from_config(config_file=str(real_apiserver.kubeconfig), context=CONTEXT)
    try:
        assert client.CoreV1Api(api).read_namespace("call-center").status.phase == "Active"
    finally:
        api.close()
