"""The analyst call browser on the cluster: the rendered Deployment starts the app the way
browser/ reads its settings, and only IAP (or an API token) lets anyone in."""

from __future__ import annotations

import ipaddress
import re

import pytest
from starlette.testclient import TestClient

from browser.core.config import BrowserMode, BrowserSettings
from browser.main import create_app
from orchestration.defs.rollout.assets import call_browser, livekit_server
from orchestration.defs.rollout.manifests import group_by_asset
from tests.manifests.render import NAME_LABEL, OVERLAYS, KubeObject, find, render_bootstrap, site_values
from tests.manifests.test_dagster_values import GKE_VALUES, VALUES, load_values

NAME = "call-browser"
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")
# Google Front End and health-check source ranges of the global external Application LB
GOOGLE_FRONT_ENDS = {ipaddress.ip_network("35.191.0.0/16"), ipaddress.ip_network("130.211.0.0/22")}


def _container(objects: list[KubeObject]) -> KubeObject:
    (container,) = find(objects, "Deployment", NAME)["spec"]["template"]["spec"]["containers"]
    return container


def _environment(container: KubeObject, secret_values: dict[tuple[str, str], str]) -> dict[str, str]:
    """The process environment the kubelet would build: Secret values filled in, $(VAR) expanded."""
    env: dict[str, str] = {}
    for item in container["env"]:
        if "valueFrom" in item:
            ref = item["valueFrom"]["secretKeyRef"]
            env[item["name"]] = secret_values[(ref["name"], ref["key"])]
        else:
            env[item["name"]] = VAR_REF.sub(lambda m: env.get(m.group(1), m.group(0)), item["value"])
    return env


SECRETS = {
    ("call-browser-api-tokens", "tokens"): "token-for-scripts",
    ("dagster-postgresql-secret", "postgresql-password"): "0123abcd",
    ("call-browser-postgresql-secret", "postgresql-password"): "4567cdef",
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rendered_environment_starts_the_browser_in_production(
    rendered: dict[str, list[KubeObject]], overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = _container(rendered[overlay])
    assert container["command"] == ["python", "-m", "browser"]
    env = _environment(container, SECRETS)
    for name in list(BrowserSettings.model_fields) + ["CALLCENTER_DATA_DIR", "STORAGE_EMULATOR_HOST"]:
        monkeypatch.delenv(f"CALLCENTER_BROWSER_{name.upper()}", raising=False)
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = BrowserSettings()  # exactly what `python -m browser` reads

    site = site_values(overlay)
    assert settings.mode is BrowserMode.PRODUCTION
    assert settings.host == "0.0.0.0"
    assert settings.port == next(p["containerPort"] for p in container["ports"] if p["name"] == "http")
    # its own read-only role (manifests/bootstrap/postgres.yaml), never the pipeline's dagster
    assert settings.call_index_url() == "postgresql://call_browser:4567cdef@postgres:5432/call_index"
    assert settings.recordings_bucket == site["recordings-bucket"]
    assert settings.gcp_project == site["gcp-project"]
    assert settings.storage_emulator_host is None, "production signs real GCS URLs"
    assert settings.tokens() == ["token-for-scripts"]
    # analysts are whoever IAP's signed assertion names, checked against the site's backend
    # service; the plain email header is never taken on trust
    assert not settings.trust_iap_header
    assert settings.iap_audience == site["browser-iap-audience"]
    assert "CALLCENTER_BROWSER_TRUST_IAP_HEADER" not in env

    # /healthz (the probes and the load balancer's check) answers without sign-in; pages do not
    client = TestClient(create_app(settings))
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    assert client.get("/healthz").status_code == 200
    assert client.get("/calls").status_code == 401
    assert client.get("/calls", headers={"Authorization": "Bearer not-a-token"}).status_code == 401


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_route_iap_and_health_check_point_at_the_browser(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    objects = rendered[overlay]
    site = site_values(overlay)
    service = find(objects, "Service", NAME)
    (port,) = service["spec"]["ports"]
    route = find(objects, "HTTPRoute", NAME)
    assert route["spec"]["hostnames"] == [site["browser-domain"]]
    assert site["browser-domain"] != site["domain"], "LiveKit signalling owns the site domain's /"
    assert route["spec"]["parentRefs"][0]["name"] == find(objects, "Gateway", "call-center")["metadata"]["name"]
    assert route["spec"]["rules"][0]["backendRefs"] == [{"name": NAME, "port": port["port"]}]
    policy = find(objects, "GCPBackendPolicy", NAME)["spec"]
    assert policy["targetRef"] == {"group": "", "kind": "Service", "name": NAME}
    assert policy["default"]["iap"]["enabled"] is True
    assert policy["default"]["iap"]["clientID"] == site["iap-client-id"]
    assert policy["default"]["iap"]["oauth2ClientSecret"] == {"name": "call-browser-iap-oauth"}
    health = find(objects, "HealthCheckPolicy", NAME)["spec"]
    assert health["targetRef"]["name"] == NAME
    assert health["default"]["config"]["httpConfig"] == {"port": port["port"], "requestPath": "/healthz"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_only_the_load_balancer_reaches_the_browser_and_it_reaches_postgres(
    rendered: dict[str, list[KubeObject]], overlay: str
) -> None:
    objects = rendered[overlay]
    (policy,) = [
        o
        for o in objects
        if o["kind"] == "NetworkPolicy" and o["spec"]["podSelector"]["matchLabels"] == {NAME_LABEL: NAME}
    ]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    # no podSelector/namespaceSelector: no pod may send its own IAP identity header
    assert all(set(peer) == {"ipBlock"} for peer in peers), peers
    assert {ipaddress.ip_network(p["ipBlock"]["cidr"]) for p in peers} == GOOGLE_FRONT_ENDS
    pod_labels = find(objects, "Deployment", NAME)["spec"]["template"]["metadata"]["labels"]
    postgres = find(render_bootstrap(), "NetworkPolicy", "postgres")
    admitted = [p["podSelector"]["matchLabels"] for rule in postgres["spec"]["ingress"] for p in rule["from"]]
    assert any(labels.items() <= pod_labels.items() for labels in admitted), "Postgres does not admit the browser"
    assert pod_labels.get("callcenter/inference-client") is None, "the browser never calls the GPU trio"


def test_gke_runs_the_dagster_image_with_workload_identity(gke: list[KubeObject]) -> None:
    (code_location,) = load_values(VALUES, GKE_VALUES)["dagster-user-deployments"]["deployments"]
    image = code_location["image"]
    assert _container(gke)["image"] == f"{image['repository']}:{image['tag']}", "browser and Dagster share one image"
    account = find(gke, "ServiceAccount", NAME)["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert account == "call-center-browser@hello-jade.iam.gserviceaccount.com"
    pod = find(gke, "Deployment", NAME)["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == NAME
    assert pod["securityContext"]["runAsUser"] == 10001, "the image's numeric user (orchestration/Dockerfile)"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_rollout_applies_the_browser_after_the_gateway(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    groups = group_by_asset(rendered[overlay])
    applied = {(o["kind"], o["metadata"]["name"]) for o in groups["call_browser"]}
    assert {
        ("Deployment", NAME),
        ("Service", NAME),
        ("PodDisruptionBudget", NAME),
        ("HTTPRoute", NAME),
        ("GCPBackendPolicy", NAME),
        ("HealthCheckPolicy", NAME),
        ("NetworkPolicy", NAME),
    } == applied
    gateway_asset = next(a for a, objs in groups.items() if any(o["kind"] == "Gateway" for o in objs))
    assert gateway_asset == "livekit_server"
    deps = {key.to_user_string() for key in call_browser.asset_deps[call_browser.key]}
    assert livekit_server.key.to_user_string() in deps
