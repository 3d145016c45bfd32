"""The rollout against the real manifests/ overlays: every object they render is applied,
exactly as rendered, by exactly one asset, and the whole rollout passes on the API double."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from orchestration.defs.rollout.manifests import group_by_asset, secret_references
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


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_applies_exactly_what_the_overlay_renders(
    overlay: str, cluster, make_resources, tmp_path: Path
) -> None:
    objects = render_overlay(overlay)
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
    resources = make_resources(overlay=overlay, manifests_dir=MANIFESTS)

    result = run_rollout(resources)

    assert result.success, [e.message for e in result.all_events if e.is_failure]
    assert materialized(result) == ALL_ASSETS
    applies = cluster.writes()
    assert {(r.method, r.headers["Content-Type"]) for r in applies} == {("PATCH", APPLY_CONTENT_TYPE)}
    sent = sorted((request_body(r) for r in applies), key=_key)
    assert sent == sorted(render_overlay(overlay), key=_key)
