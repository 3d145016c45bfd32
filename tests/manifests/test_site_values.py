"""A site's values (overlays/<site>/site.yaml) are required inputs: the rollout refuses to render
an overlay that leaves one empty, naming each, before it applies anything. The first site's
SIP IPs, IAP client and IAP audience are not known yet, so its overlay is refused as committed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from orchestration.defs.rollout.manifests import (
    ManifestError,
    MissingSiteValues,
    missing_site_values,
    render_overlay,
)
from orchestration.defs.rollout.settings import RolloutSettings
from tests.manifests.render import MANIFESTS_DIR, find

GKE = MANIFESTS_DIR / "overlays" / "gke"
GKE_REQUIRED = ["browser-iap-audience", "iap-client-id", "sip-a-public-ip", "sip-b-public-ip"]
FILLED = {
    "iap-client-id": "123456789012-abc.apps.googleusercontent.com",
    "browser-iap-audience": "/projects/123456789012/global/backendServices/987654321",
    "sip-a-public-ip": "203.0.113.10",
    "sip-b-public-ip": "203.0.113.11",
}


def _filled_copy(tmp_path: Path, values: dict[str, str]) -> Path:
    manifests = tmp_path / "manifests"
    shutil.copytree(MANIFESTS_DIR, manifests)
    site_file = manifests / "overlays" / "gke" / "site.yaml"
    site = yaml.safe_load(site_file.read_text())
    site["data"].update(values)
    site_file.write_text(yaml.safe_dump(site))
    return manifests


def test_the_gke_overlays_empty_site_values_are_detected() -> None:
    assert missing_site_values(GKE) == GKE_REQUIRED


def test_the_dev_overlay_supplies_every_site_value() -> None:
    assert missing_site_values(MANIFESTS_DIR / "overlays" / "dev") == []


def test_rendering_the_gke_overlay_for_the_rollout_names_each_missing_value() -> None:
    with pytest.raises(MissingSiteValues) as refused:
        render_overlay(GKE)
    message = str(refused.value)
    assert all(name in message for name in GKE_REQUIRED), message
    assert "overlays/gke/site.yaml" in message
    assert isinstance(refused.value, ManifestError), "the rollout assets turn ManifestError into a failure"


def test_the_rollouts_first_asset_is_refused_before_anything_is_applied() -> None:
    settings = RolloutSettings(manifests_dir=str(MANIFESTS_DIR), overlay="gke")
    with pytest.raises(MissingSiteValues, match="sip-a-public-ip"):
        settings.objects_for("namespace_and_secrets")


def test_a_site_that_fills_them_in_renders_and_its_values_land(tmp_path: Path) -> None:
    manifests = _filled_copy(tmp_path, FILLED)
    objects = render_overlay(manifests / "overlays" / "gke")
    assert find(objects, "Service", "livekit-sip-a")["spec"]["loadBalancerIP"] == FILLED["sip-a-public-ip"]
    assert find(objects, "Service", "livekit-sip-b")["spec"]["loadBalancerIP"] == FILLED["sip-b-public-ip"]
    browser = find(objects, "Deployment", "call-browser")["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in browser["env"]}
    assert env["CALLCENTER_BROWSER_IAP_AUDIENCE"] == FILLED["browser-iap-audience"]
    policy = find(objects, "GCPBackendPolicy", "call-browser")["spec"]["default"]["iap"]
    assert policy["clientID"] == FILLED["iap-client-id"]


def test_one_value_left_empty_is_still_refused(tmp_path: Path) -> None:
    manifests = _filled_copy(tmp_path, {**FILLED, "sip-b-public-ip": "  "})
    with pytest.raises(MissingSiteValues, match="sip-b-public-ip") as refused:
        render_overlay(manifests / "overlays" / "gke")
    assert "sip-a-public-ip" not in str(refused.value)


def test_comparing_renders_may_skip_the_check() -> None:
    assert render_overlay(GKE, require_site_values=False)
