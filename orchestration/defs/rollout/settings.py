"""How the rollout renders and waits: overlay, field manager, timeouts."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import dagster as dg

from orchestration.defs.rollout.manifests import KubeObject, group_by_asset, render_overlay

REPO_ROOT = Path(__file__).resolve().parents[3]
_RENDERED: dict[tuple[str, str, str], list[KubeObject]] = {}


def _fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")) if root.is_dir() else []:
        if path.is_file():
            stat = path.stat()
            digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}\n".encode())
    return digest.hexdigest()


class RolloutSettings(dg.ConfigurableResource):
    manifests_dir: str = "manifests"  # relative to the repository root, or absolute
    overlay: str = "gke"  # a folder under <manifests_dir>/overlays
    namespace: str = "call-center"  # where the trunk credentials Secret lives
    field_manager: str = "callcenter-rollout"
    rollout_timeout_s: float = 900.0  # GPU model servers take minutes to load
    poll_interval_s: float = 5.0
    request_timeout_s: float = 30.0
    events_per_pod: int = 5
    kubectl: str = "kubectl"

    def overlay_dir(self) -> Path:
        base = Path(self.manifests_dir)
        if not base.is_absolute():
            base = REPO_ROOT / base
        return base / "overlays" / self.overlay

    def render(self) -> list[KubeObject]:
        # Every step of a run renders (an asset and its checks must agree on the objects);
        # kubectl takes ~0.3 s, so renders are reused while no file under the manifests changed.
        overlay = self.overlay_dir()
        key = (str(overlay), self.kubectl, _fingerprint(overlay.parent.parent))
        if key not in _RENDERED:
            _RENDERED.clear()
            _RENDERED[key] = render_overlay(overlay, kubectl=self.kubectl)
        return copy.deepcopy(_RENDERED[key])

    def objects_for(self, asset: str) -> list[KubeObject]:
        return group_by_asset(self.render())[asset]
