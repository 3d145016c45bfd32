"""LiveKit SIP's two instances are one definition: base/ renders livekit-sip-b as livekit-sip-a
with only its name and instance label changed; each site then gives each its own IP and ranges.

Pinned while manifests/base/livekit-sip.yaml (two hand-copied instances) became
base/livekit-sip/{instance,a,b}: the render was compared against the old file's, object for
object and in order, for base/ and both overlays (issue 19).
"""

from __future__ import annotations

import json
from typing import Any

from tests.manifests.render import MANIFESTS_DIR, NAME_LABEL, find, render_path

INSTANCE_LABEL = "app.kubernetes.io/instance"


def _renamed(obj: Any, old: str, new: str) -> Any:
    return json.loads(json.dumps(obj).replace(f'"{old}"', f'"{new}"'))


def test_instances_differ_only_by_name() -> None:
    base = render_path(MANIFESTS_DIR / "base")
    for kind in ("Deployment", "Service"):
        a, b = find(base, kind, "livekit-sip-a"), find(base, kind, "livekit-sip-b")
        assert b == _renamed(a, "livekit-sip-a", "livekit-sip-b"), kind
        assert a["metadata"]["labels"][NAME_LABEL] == "livekit-sip"
        assert a["metadata"]["labels"][INSTANCE_LABEL] == "livekit-sip-a"


def test_each_instance_selects_only_its_own_pod() -> None:
    base = render_path(MANIFESTS_DIR / "base")
    for name in ("livekit-sip-a", "livekit-sip-b"):
        deployment, service = find(base, "Deployment", name), find(base, "Service", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert deployment["spec"]["selector"]["matchLabels"] == {NAME_LABEL: "livekit-sip", INSTANCE_LABEL: name}
        assert service["spec"]["selector"] == {NAME_LABEL: "livekit-sip", INSTANCE_LABEL: name}
        assert pod_labels[INSTANCE_LABEL] == name
        # shared by both: the PDB keeps one instance answering while the other drains
        assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == "livekit-sip"
    pdb = find(base, "PodDisruptionBudget", "livekit-sip")
    assert pdb["spec"]["selector"]["matchLabels"] == {NAME_LABEL: "livekit-sip"}
