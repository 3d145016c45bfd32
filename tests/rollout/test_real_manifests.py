"""The rollout against the real manifests/ overlays: every object they render is applied,
exactly as rendered, by exactly one asset, and the whole rollout passes on the API double."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
import yaml

from orchestration.defs.rollout.manifests import group_by_asset, missing_site_values, secret_references
from orchestration.defs.rollout.manifests import render_overlay as rollout_render
from orchestration.defs.rollout.settings import REPO_ROOT
from tests.manifests.render import OVERLAYS, render_overlay
from tests.rollout.conftest import materialized, run_rollout
from tests.rollout.kube_double import APPLY_CONTENT_TYPE, request_body
from tests.rollout.test_rollout_job import ALL_ASSETS

MANIFESTS = REPO_ROOT / "manifests"


def _key(obj: dict) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace") or "", meta["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_belongs_to_exactly_one_asset(overlay: str) -> None:
    objects = render_overlay(overlay)
    groups = group_by_asset(objects)
    claimed = sorted(_key(o) for group in groups.values() for o in group)
    assert claimed == sorted(_key(o) for o in objects)
    for asset in ("riva_stt", "vllm_llm", "chatterbox_tts", "redis", "livekit_server", "livekit_sip", "agent_workers"):
        assert any(o["kind"] in ("Deployment", "StatefulSet") for o in groups[asset]), asset


# stand-ins for what a site supplies before its first rollout (tests/manifests/test_site_values.py)
EXAMPLE_SITE_VALUES = {
    "iap-client-id": "123456789012-abc.apps.googleusercontent.com",
    "browser-iap-audience": "/projects/123456789012/global/backendServices/987654321",
    "sip-a-public-ip": "203.0.113.10",
    "sip-b-public-ip": "203.0.113.11",
}


def _with_site_values(overlay: str, tmp_path: Path) -> Path:
    """The real manifests, with the overlay's empty site values filled in as a site would."""
    missing = missing_site_values(MANIFESTS / "overlays" / overlay)
    if not missing:
        return MANIFESTS
    copy = tmp_path / "site-manifests"  # tmp_path/manifests is the fixture manifests
    shutil.copytree(MANIFESTS, copy)
    site_file = copy / "overlays" / overlay / "site.yaml"
    site = yaml.safe_load(site_file.read_text())
    site["data"].update({key: EXAMPLE_SITE_VALUES[key] for key in missing})
    site_file.write_text(yaml.safe_dump(site))
    return copy


def _seed_cluster(cluster, objects: list[dict]) -> None:
    cluster.serve_kinds_of(objects)  # CRDs: Gateway API, STUNner, GKE policies
    secrets: dict[tuple[str, str], set[str]] = {}
    for ref in secret_references(objects):
        secrets.setdefault((ref.namespace, ref.secret), set()).add(ref.key or "value")
    secrets[("call-center", "twilio-sip")] = {"username", "password"}
    for (namespace, name), keys in secrets.items():
        cluster.put(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "data": {k: base64.b64encode(b"x").decode() for k in keys},
            }
        )
    cluster.clear_requests()


def test_the_gke_overlay_as_committed_is_refused_before_anything_is_applied(cluster, make_resources) -> None:
    """Its SIP IPs and IAP values are required inputs the first site has not supplied yet."""
    _seed_cluster(cluster, render_overlay("gke"))

    result = run_rollout(make_resources(overlay="gke", manifests_dir=MANIFESTS))

    assert not result.success
    failures = " ".join(e.step_failure_data.error.message for e in result.all_events if e.is_step_failure)
    assert [e.step_key for e in result.all_events if e.is_step_failure] == ["namespace_and_secrets"]
    for name in ("iap-client-id", "browser-iap-audience", "sip-a-public-ip", "sip-b-public-ip"):
        assert name in failures
    assert materialized(result) == set()
    assert cluster.writes() == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_applies_exactly_what_the_overlay_renders(
    overlay: str, cluster, make_resources, tmp_path: Path
) -> None:
    manifests = _with_site_values(overlay, tmp_path)
    objects = rollout_render(manifests / "overlays" / overlay)
    _seed_cluster(cluster, objects)
    resources = make_resources(overlay=overlay, manifests_dir=manifests)

    result = run_rollout(resources)

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert materialized(result) == ALL_ASSETS
    applies = cluster.writes()
    assert {(r.method, r.headers["Content-Type"]) for r in applies} == {("PATCH", APPLY_CONTENT_TYPE)}
    sent = sorted((request_body(r) for r in applies), key=_key)
    assert sent == sorted(objects, key=_key)
