"""How the rollout renders and waits: overlay, field manager, timeouts."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from orchestration.defs.rollout.manifests import KubeObject, group_by_asset, render_overlay

REPO_ROOT = Path(__file__).resolve().parents[3]


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
        return render_overlay(self.overlay_dir(), kubectl=self.kubectl)

    def objects_for(self, asset: str) -> list[KubeObject]:
        return group_by_asset(self.render())[asset]
