"""What the rollout assets apply is exactly what these manifests render: the rollout renders
the same overlay, and every rendered object belongs to exactly one rollout asset."""

from __future__ import annotations

import pytest
import yaml

from orchestration.defs.rollout.manifests import group_by_asset
from orchestration.defs.rollout.manifests import render_overlay as rollout_render
from tests.manifests.render import MANIFESTS_DIR, OVERLAYS, KubeObject


def _key(obj: KubeObject) -> str:
    return yaml.safe_dump(obj, sort_keys=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_rollout_applies_every_rendered_object_once(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    ours = rendered[overlay]
    # the comparison only: the rollout itself refuses an overlay with empty site values
    # (tests/manifests/test_site_values.py)
    theirs = rollout_render(MANIFESTS_DIR / "overlays" / overlay, require_site_values=False)
    assert sorted(map(_key, theirs)) == sorted(map(_key, ours))
    groups = group_by_asset(theirs)
    applied = [obj for objects in groups.values() for obj in objects]
    assert sorted(map(_key, applied)) == sorted(map(_key, ours)), "an object is applied twice or not at all"
    for asset, names in (
        ("riva_stt", {"riva-stt"}),
        ("vllm_llm", {"vllm"}),
        ("chatterbox_tts", {"chatterbox-tts"}),
        ("livekit_sip", {"livekit-sip"}),
        ("agent_workers", {"agent"}),
    ):
        workloads = {
            o["metadata"]["labels"]["app.kubernetes.io/name"] for o in groups[asset] if o["kind"] == "Deployment"
        }
        assert workloads == names, f"{asset} applies {workloads}"
