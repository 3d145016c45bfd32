"""Every overlay builds, and every rendered object validates: built-in kinds strictly against
the Kubernetes version GKE runs, custom resources against crd_schemas.py."""

from __future__ import annotations

import jsonschema
import kubernetes_validate
import pytest

from tests.manifests.crd_schemas import CRD_SCHEMAS
from tests.manifests.render import (
    NAME_LABEL,
    NAMESPACE,
    OVERLAYS,
    PART_OF_LABEL,
    RENDERS,
    KubeObject,
    RenderError,
    render_overlay,
)

# The versions GKE's stable and regular channels run; kubernetes-validate ships both schemas.
# Objects must be valid on each, so a channel upgrade never meets an unknown field.
KUBERNETES_VERSIONS = ("1.33.0", "1.34.0")
KUBERNETES_VERSION = KUBERNETES_VERSIONS[0]
CLUSTER_SCOPED = {"Namespace", "GatewayClass", "ClusterRole", "ClusterRoleBinding"}


def _ref(obj: KubeObject) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


@pytest.mark.parametrize("overlay", RENDERS)
def test_overlay_builds_objects_in_the_call_center_namespace(
    rendered: dict[str, list[KubeObject]], overlay: str
) -> None:
    objects = rendered[overlay]
    assert len(objects) > (5 if overlay == "bootstrap" else 40)
    for obj in objects:
        namespace = obj["metadata"].get("namespace")
        if obj["kind"] in CLUSTER_SCOPED:
            assert namespace is None, f"{_ref(obj)} is cluster-scoped but rendered with namespace {namespace}"
        else:
            assert namespace == NAMESPACE, f"{_ref(obj)} rendered in namespace {namespace!r}"
    keys = [(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects]
    assert len(keys) == len(set(keys)), "an object is rendered twice"


@pytest.mark.parametrize("overlay", RENDERS)
def test_every_object_has_the_stable_labels(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    for obj in rendered[overlay]:
        labels = obj["metadata"].get("labels", {})
        assert labels.get(PART_OF_LABEL) == "call-center", f"{_ref(obj)} lacks {PART_OF_LABEL}=call-center"
        if obj["kind"] != "Namespace":
            assert labels.get(NAME_LABEL), f"{_ref(obj)} lacks {NAME_LABEL}"
        template = obj.get("spec", {}).get("template")
        if template is not None:
            pod_labels = template["metadata"]["labels"]
            assert pod_labels.get(NAME_LABEL) == labels[NAME_LABEL], f"{_ref(obj)}'s pods carry another name"
            assert pod_labels.get(PART_OF_LABEL) == "call-center"


@pytest.mark.parametrize("overlay", RENDERS)
def test_builtin_objects_validate_strictly(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    builtin = [o for o in rendered[overlay] if (o["apiVersion"], o["kind"]) not in CRD_SCHEMAS]
    expected = {"StatefulSet", "Service", "NetworkPolicy"}
    if overlay != "bootstrap":
        expected |= {"Deployment", "HorizontalPodAutoscaler"}
    assert expected <= {o["kind"] for o in builtin}
    errors = []
    for obj in builtin:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(
                f"{obj['apiVersion']} {_ref(obj)}: no such built-in kind in {KUBERNETES_VERSION} and no CRD schema"
            )
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{_ref(obj)}: {exc.message} at {list(exc.path)}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_custom_resources_validate_against_their_crd_schema(
    rendered: dict[str, list[KubeObject]], overlay: str
) -> None:
    custom = [o for o in rendered[overlay] if (o["apiVersion"], o["kind"]) in CRD_SCHEMAS]
    assert {o["kind"] for o in custom} == {
        "GatewayClass",
        "Gateway",
        "HTTPRoute",
        "HealthCheckPolicy",
        "GCPBackendPolicy",
        "GatewayConfig",
        "UDPRoute",
    }
    errors = []
    for obj in custom:
        validator = jsonschema.Draft202012Validator(CRD_SCHEMAS[(obj["apiVersion"], obj["kind"])])
        errors += [f"{_ref(obj)}: {e.message} at {list(e.absolute_path)}" for e in validator.iter_errors(obj)]
    assert not errors, "\n".join(errors)


def test_crd_schemas_reject_what_the_crd_rejects() -> None:
    """The CRD schemas are strict: an unknown field, a missing required field and an inline
    STUNner password each fail."""
    gateway = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "Gateway",
        "metadata": {"name": "g", "namespace": NAMESPACE},
        "spec": {"gatewayClassName": "c", "listeners": [{"name": "https", "port": 443, "protocol": "HTTPS"}]},
    }
    schema = CRD_SCHEMAS[("gateway.networking.k8s.io/v1", "Gateway")]
    jsonschema.validate(gateway, schema)
    typo = {**gateway, "spec": {**gateway["spec"], "listener": []}}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(typo, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**gateway, "spec": {"gatewayClassName": "c"}}, schema)
    plaintext = {
        "apiVersion": "stunner.l7mp.io/v1",
        "kind": "GatewayConfig",
        "metadata": {"name": "s", "namespace": NAMESPACE},
        "spec": {"authType": "plaintext", "userName": "user-1", "password": "pass-1"},
    }
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(plaintext, CRD_SCHEMAS[("stunner.l7mp.io/v1", "GatewayConfig")])


def test_strict_validation_rejects_an_unknown_field(gke: list[KubeObject]) -> None:
    """kubernetes-validate's strict mode is what catches a misspelt field (so the test above can fail)."""
    deployment = next(o for o in gke if o["kind"] == "Deployment")
    broken = {**deployment, "spec": {**deployment["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_a_missing_overlay_is_a_clear_error() -> None:
    with pytest.raises(RenderError, match="no overlay 'staging'"):
        render_overlay("staging")
