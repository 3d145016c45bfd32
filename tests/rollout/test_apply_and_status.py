"""Pure pieces of the rollout: change detection, secret references, rollout progress, and
the shape of the code location (keys, order, blocking gates, jobs)."""

from __future__ import annotations

import importlib

import dagster as dg
import pytest

from orchestration.defs.rollout.apply import drift
from orchestration.defs.rollout.manifests import ManifestError, group_by_asset, secret_references
from orchestration.defs.rollout.rollout_status import progress_of

DEPLOYMENT = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": "vllm", "namespace": "call-center", "labels": {"app.kubernetes.io/name": "vllm"}},
    "spec": {
        "replicas": 1,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "vllm",
                        "image": "vllm/vllm-openai:v0.8.5.post1",
                        "ports": [{"containerPort": 8000}],
                        "resources": {"requests": {"cpu": "1000m", "memory": "1Gi"}},
                        "env": [{"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "token"}}}],
                    }
                ]
            }
        },
    },
}


def live_copy(**container_overrides) -> dict:
    """What an API server returns: our fields, normalised, plus defaults and server metadata."""
    import copy

    live = copy.deepcopy(DEPLOYMENT)
    live["metadata"] |= {"uid": "u", "resourceVersion": "9", "generation": 3, "managedFields": [{"manager": "x"}]}
    live["spec"]["strategy"] = {"type": "RollingUpdate"}
    container = live["spec"]["template"]["spec"]["containers"][0]
    container["resources"]["requests"]["cpu"] = "1"  # the server normalises 1000m
    container["ports"][0]["protocol"] = "TCP"
    container["terminationMessagePath"] = "/dev/termination-log"
    container |= container_overrides
    live["status"] = {"observedGeneration": 3}
    return live


def test_server_defaults_and_normalised_quantities_are_no_change() -> None:
    assert drift(DEPLOYMENT, live_copy()) == ""


def test_a_changed_image_is_a_diff_naming_both_images() -> None:
    diff = drift(DEPLOYMENT, live_copy(image="vllm/vllm-openai:v0.7.0"))
    assert "--- live/Deployment/call-center/vllm" in diff
    changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert [line.split()[-1] for line in changed] == ["vllm/vllm-openai:v0.7.0", "vllm/vllm-openai:v0.8.5.post1"]
    assert [line[0] for line in changed] == ["-", "+"]


def test_a_missing_object_is_all_additions() -> None:
    diff = drift(DEPLOYMENT, None)
    assert diff and not [line for line in diff.splitlines() if line.startswith("-") and not line.startswith("---")]


def test_secret_string_data_compares_with_stored_data() -> None:
    rendered = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}, "stringData": {"k": "v"}}
    live = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "n"}, "data": {"k": "dg=="}}
    assert drift(rendered, live) == ""


def test_secret_references_name_their_reader() -> None:
    (ref,) = secret_references([DEPLOYMENT])
    assert (ref.namespace, ref.secret, ref.key, ref.referenced_by) == ("call-center", "hf-token", "token", "Deployment/call-center/vllm")


def test_unclaimed_objects_are_an_error_naming_them() -> None:
    stray = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "labels": {"app.kubernetes.io/name": "grafana"}}}
    with pytest.raises(ManifestError, match=r"ConfigMap/x \(app.kubernetes.io/name='grafana'\)"):
        group_by_asset([DEPLOYMENT, stray])


@pytest.mark.parametrize(
    ("status", "generation", "done", "detail"),
    [
        ({"observedGeneration": 1}, 2, False, "observed generation 1 of 2"),
        ({"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 1, "availableReplicas": 1}, 2, False, "1/2 ready, 1/2 available"),
        ({"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 2, "availableReplicas": 2}, 2, True, "2/2 available"),
    ],
)
def test_rollout_progress(status: dict, generation: int, done: bool, detail: str) -> None:
    live = {
        "kind": "Deployment",
        "metadata": {"name": "agent", "namespace": "call-center", "generation": generation},
        "spec": {"replicas": 2},
        "status": status,
    }
    progress = progress_of(live)
    assert progress.done is done
    assert detail in progress.detail


def test_code_location_shape(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", "local")
    import orchestration.definitions as module

    defs = importlib.reload(module).defs
    graph = defs.resolve_asset_graph()
    deps = {k.to_user_string(): {p.to_user_string() for p in graph.get(k).parent_keys} for k in graph.get_all_asset_keys()}
    assert deps["riva_stt"] == deps["vllm_llm"] == deps["chatterbox_tts"] == {"namespace_and_secrets"}
    assert deps["redis"] == {"riva_stt", "vllm_llm", "chatterbox_tts"}
    assert deps["livekit_sip"] == {"livekit_server"}
    assert deps["inbound_trunk"] == deps["outbound_trunk"] == {"livekit_sip"}
    assert deps["agent_workers"] == {"dispatch_rule", "outbound_trunk", "livekit_egress"}
    checks = {(k.asset_key.to_user_string(), k.name): graph.get(k) for k in graph.asset_check_keys}
    for asset in ("riva_stt", "vllm_llm", "chatterbox_tts", "livekit_server", "agent_workers"):
        assert checks[(asset, "rolled_out_and_answering")].blocking
        assert not checks[(asset, "matches_manifests")].blocking
    assert checks[("namespace_and_secrets", "referenced_secrets_exist")].blocking
    job = defs.resolve_job_def("rollout")
    assert job.tags["callcenter/domain"] == "rollout"
    assert {"kubernetes", "rollout_settings", "inference_endpoints", "sip_trunks", "livekit"} <= set(defs.resources)
    assert isinstance(defs.resolve_job_def("rollout_drift"), dg.JobDefinition)


def test_a_field_we_applied_before_and_the_manifests_dropped_is_a_change() -> None:
    live = live_copy(args=["--max-model-len=8192"])
    live["metadata"]["managedFields"] = [
        {
            "manager": "callcenter-rollout",
            "operation": "Apply",
            "fieldsV1": {
                "f:spec": {
                    "f:replicas": {},
                    "f:template": {
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"vllm"}': {".": {}, "f:image": {}, "f:args": {}, "f:name": {}}
                            }
                        }
                    },
                }
            },
        },
        # Another manager's fields (kubectl scale, the HPA) are not ours to remove.
        {"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:spec": {"f:paused": {}}}},
    ]
    diff = drift(DEPLOYMENT, live, "callcenter-rollout")
    assert '- spec.template.spec.containers[{"name":"vllm"}].args   (applied before, no longer in the manifests)' in diff
    assert "paused" not in diff
    assert drift(DEPLOYMENT, live, "someone-else") == ""


def test_a_list_key_with_a_server_defaulted_protocol_names_the_port_the_manifests_still_set() -> None:
    """The API server records a port given without ``protocol`` under its defaulted key
    (seen on kube-apiserver v1.34, tests/rollout/test_real_apiserver.py)."""
    live = live_copy()
    live["metadata"]["managedFields"] = [
        {
            "manager": "callcenter-rollout",
            "operation": "Apply",
            "fieldsV1": {
                "f:spec": {
                    "f:template": {
                        "f:spec": {
                            "f:containers": {
                                'k:{"name":"vllm"}': {
                                    "f:ports": {'k:{"containerPort":8000,"protocol":"TCP"}': {"f:containerPort": {}}},
                                }
                            }
                        }
                    }
                }
            },
        }
    ]
    assert drift(DEPLOYMENT, live, "callcenter-rollout") == ""
    udp = live["metadata"]["managedFields"][0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]
    udp['k:{"name":"vllm"}']["f:ports"] = {'k:{"containerPort":8000,"protocol":"UDP"}': {}}
    assert 'ports[{"containerPort":8000,"protocol":"UDP"}]   (applied before' in drift(DEPLOYMENT, live, "callcenter-rollout")
