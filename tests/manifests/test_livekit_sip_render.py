"""LiveKit SIP renders exactly as before its manifest became one instance definition (issue 19).

fixtures/livekit_sip_render.json holds the objects labelled app.kubernetes.io/name=livekit-sip
as base/ and each overlay rendered them from the hand-written two-instance file: the oracle
while the definition is restructured, so any drift in what reaches the cluster shows here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.manifests.render import MANIFESTS_DIR, NAME_LABEL, KubeObject, render_path

ORACLE = Path(__file__).parent / "fixtures" / "livekit_sip_render.json"
RENDERS = {"base": MANIFESTS_DIR / "base", "gke": MANIFESTS_DIR / "overlays/gke", "dev": MANIFESTS_DIR / "overlays/dev"}


def _by_identity(objects: list[KubeObject]) -> dict[tuple[str, str], KubeObject]:
    return {(o["kind"], o["metadata"]["name"]): o for o in objects}


@pytest.mark.parametrize("render", sorted(RENDERS))
def test_livekit_sip_renders_as_the_oracle(render: str) -> None:
    expected = _by_identity(json.loads(ORACLE.read_text())[render])
    actual = _by_identity(
        [o for o in render_path(RENDERS[render]) if o["metadata"].get("labels", {}).get(NAME_LABEL) == "livekit-sip"]
    )
    assert sorted(actual) == sorted(expected)
    for identity, obj in expected.items():
        assert actual[identity] == obj, identity
