"""Rollout fixtures: the Kubernetes API double, a real kube-apiserver and etcd
(devstack/control_plane.py), the inference doubles and the LiveKit double on loopback, and
the rollout definitions wired to them with short timeouts."""

from __future__ import annotations

import base64
import itertools
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

from devstack.control_plane import CONTEXT, ControlPlane, ControlPlaneUnavailable, gateway_api_crds, install_crds
from doubles.livekit_server import LiveKitDouble
from orchestration.defs import rollout
from orchestration.defs.rollout.kube import KubernetesResource
from orchestration.defs.rollout.probes import InferenceEndpoints
from orchestration.defs.rollout.settings import RolloutSettings
from orchestration.defs.rollout.trunks import SipTrunkSettings
from orchestration.resources.livekit import LiveKitResource
from tests.rollout.inference_doubles import OpenAIDouble, RivaDouble
from tests.rollout.kube_double import ClusterDouble

FIXTURE_MANIFESTS = Path(__file__).parent / "fixtures" / "manifests"
NAMESPACE = "call-center"
SECRETS = {
    "hf-token": {"value": "hf_test"},
    "livekit-api-keys": {"value": "APItestkey: secret"},
    "twilio-sip": {"username": "callcenter", "password": "twilio-test-password"},
}
AGENT_LOG = '{"message": "registered worker", "level": "INFO", "id": "AW_test", "agent_name": "call-center-agent"}\n'


def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[ClusterDouble]:
    with ClusterDouble() as double:
        double.logs["agent"] = AGENT_LOG
        yield double


@pytest.fixture
def seed_secrets(cluster: ClusterDouble) -> Callable[..., None]:
    def seed(*, skip: tuple[str, ...] = ()) -> None:
        for name, data in SECRETS.items():
            if name not in skip:
                cluster.put(secret(name, data))

    return seed


@pytest.fixture(scope="module")
def riva() -> Iterator[RivaDouble]:
    with RivaDouble() as double:
        yield double


@pytest.fixture(scope="module")
def openai_double() -> Iterator[OpenAIDouble]:
    with OpenAIDouble() as double:
        yield double


@pytest.fixture
def manifests(tmp_path: Path) -> Path:
    """A private copy of the fixture manifests, so a test can add overlays."""
    target = tmp_path / "manifests"
    shutil.copytree(FIXTURE_MANIFESTS, target)
    return target


@pytest.fixture
def make_resources(
    cluster: ClusterDouble,
    livekit_double: LiveKitDouble,
    riva: RivaDouble,
    openai_double: OpenAIDouble,
    manifests: Path,
    tmp_path: Path,
) -> Callable[..., dict[str, Any]]:
    kubeconfig = cluster.write_kubeconfig(tmp_path / "kubeconfig")

    def make(
        overlay: str = "test", rollout_timeout_s: float = 3.0, manifests_dir: Path | None = None, **settings: Any
    ) -> dict[str, Any]:
        return rollout_resources(
            KubernetesResource(context="kube-double", kubeconfig=str(kubeconfig)),
            RolloutSettings(
                manifests_dir=str(manifests_dir or manifests),
                overlay=overlay,
                rollout_timeout_s=rollout_timeout_s,
                poll_interval_s=0.02,
                request_timeout_s=5.0,
                **settings,
            ),
            riva=riva,
            openai_double=openai_double,
            livekit_double=livekit_double,
        )

    return make


def rollout_resources(
    kubernetes: KubernetesResource,
    settings: RolloutSettings,
    *,
    riva: RivaDouble,
    openai_double: OpenAIDouble,
    livekit_double: LiveKitDouble,
) -> dict[str, Any]:
    """The rollout's resources around a Kubernetes API (the double or the real server): the
    inference doubles, the test trunks and the LiveKit double."""
    return {
        "kubernetes": kubernetes,
        "rollout_settings": settings,
        "inference_endpoints": InferenceEndpoints(
            riva_uri=riva.uri,
            vllm_base_url=f"{openai_double.url}/v1",
            vllm_model=openai_double.model,
            tts_base_url=openai_double.url,
            timeout_s=5.0,
        ),
        "sip_trunks": SipTrunkSettings(phone_numbers="+15550100,+15550101", termination_uri="callcenter.pstn.twilio.com"),
        "livekit": LiveKitResource(
            url=livekit_double.url, api_key=livekit_double.api_key, api_secret=livekit_double.api_secret
        ),
    }


def run_rollout(
    resources: dict[str, Any], job: str = "rollout", assets: list[str] | None = None
) -> dg.ExecuteInProcessResult:
    """The job in process; ``assets`` narrows it to those assets (and their checks)."""
    defs = dg.Definitions.merge(rollout.defs, dg.Definitions(resources=resources))
    selection = [dg.AssetKey(a) for a in assets] if assets else None
    return defs.resolve_job_def(job).execute_in_process(
        raise_on_error=False, instance=dg.DagsterInstance.ephemeral(), asset_selection=selection
    )


def materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def materialization_metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key.to_user_string() == asset:
            return {k: v.value for k, v in event.materialization.metadata.items()}
    raise AssertionError(f"{asset} was not materialized")


def check_evaluations(result: dg.ExecuteInProcessResult) -> dict[str, Any]:
    """``asset:check_name`` -> its evaluation."""
    return {
        f"{e.asset_key.to_user_string()}:{e.check_name}": e for e in result.get_asset_check_evaluations()
    }


# --- a real kube-apiserver -------------------------------------------------------------------
@pytest.fixture(scope="session")
def real_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    """etcd and kube-apiserver on loopback for the session, the Gateway API CRDs installed.
    Tests using it carry ``xdist_group("real_apiserver")`` so one worker starts it."""
    plane = ControlPlane(tmp_path_factory.mktemp("control-plane"))
    try:
        plane.start()
        install_crds(plane.kubeconfig, gateway_api_crds())
    except ControlPlaneUnavailable as e:
        plane.stop()
        pytest.fail(str(e), pytrace=False)
    yield plane
    plane.stop()


_NAMESPACES = itertools.count(1)


@pytest.fixture
def real_kube_api(real_apiserver: ControlPlane) -> Iterator[Any]:
    from kubernetes import config

    api = config.new_client_from_config(config_file=str(real_apiserver.kubeconfig), context=CONTEXT)
    yield api
    api.close()


@pytest.fixture
def real_namespace(real_kube_api: Any, manifests: Path) -> str:
    """A namespace of its own for one test, on the shared API server (nothing deletes
    namespaces there: no controller-manager finalizes them), with the Secrets the fixture
    manifests read, and an overlay ``<namespace>`` of the fixture manifests placing them in it."""
    from kubernetes import client

    namespace = f"rollout-{next(_NAMESPACES)}"
    core = client.CoreV1Api(real_kube_api)
    core.create_namespace({"metadata": {"name": namespace}})
    for name, data in SECRETS.items():
        body = secret(name, data)
        body["metadata"]["namespace"] = namespace
        core.create_namespaced_secret(namespace, body)
    overlay = manifests / "overlays" / namespace
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(f"resources: [../test]\nnamespace: {namespace}\n")
    return namespace


@pytest.fixture
def make_real_resources(
    real_apiserver: ControlPlane,
    real_namespace: str,
    livekit_double: LiveKitDouble,
    riva: RivaDouble,
    openai_double: OpenAIDouble,
    manifests: Path,
) -> Callable[..., dict[str, Any]]:
    """The rollout's resources against the real API server, in the test's namespace."""

    def make(overlay: str = real_namespace, rollout_timeout_s: float = 3.0, **settings: Any) -> dict[str, Any]:
        return rollout_resources(
            KubernetesResource(context=CONTEXT, kubeconfig=str(real_apiserver.kubeconfig)),
            RolloutSettings(
                manifests_dir=str(manifests),
                overlay=overlay,
                namespace=real_namespace,
                rollout_timeout_s=rollout_timeout_s,
                poll_interval_s=0.05,
                request_timeout_s=10.0,
                **settings,
            ),
            riva=riva,
            openai_double=openai_double,
            livekit_double=livekit_double,
        )

    return make
