"""Render the kustomize overlays under manifests/ exactly as they get applied.

``kubectl kustomize manifests/overlays/<name>`` is the source of truth for what reaches the
cluster; other areas (the rollout assets' tests) import :func:`render_overlay` to compare
what they deploy with what these files render.
"""

from __future__ import annotations

import copy
import functools
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
MANIFESTS_DIR = REPO_ROOT / "manifests"
OVERLAYS = ("gke", "dev")
# applied once before Dagster (namespace, PostgreSQL, the rollout's RBAC); not a site overlay
BOOTSTRAP = "bootstrap"
RENDERS = (*OVERLAYS, BOOTSTRAP)
NAMESPACE = "call-center"
NAME_LABEL = "app.kubernetes.io/name"
PART_OF_LABEL = "app.kubernetes.io/part-of"

KubeObject = dict[str, Any]
POD_TEMPLATE_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "Job")


class RenderError(RuntimeError):
    """An overlay does not build."""


@functools.cache
def _render_text(overlay_dir: str) -> str:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RenderError("kubectl is not on PATH: install kubectl (it carries kustomize) to render manifests/")
    proc = subprocess.run([kubectl, "kustomize", overlay_dir], capture_output=True, text=True, timeout=120, check=False)
    if proc.returncode != 0:
        raise RenderError(f"kubectl kustomize {overlay_dir} failed:\n{proc.stderr.strip()}")
    return proc.stdout


def render_path(path: Path) -> list[KubeObject]:
    """Every object a kustomization directory renders, in order (a fresh copy each call)."""
    text = _render_text(str(path))
    return [doc for doc in yaml.safe_load_all(text) if doc]


def render_overlay(name: str) -> list[KubeObject]:
    """Every object ``manifests/overlays/<name>`` renders, in order. Rendered once per process;
    each call returns a deep copy, so callers may mutate what they get."""
    overlay = MANIFESTS_DIR / "overlays" / name
    if not (overlay / "kustomization.yaml").is_file():
        raise RenderError(f"no overlay {name!r}: expected {overlay}/kustomization.yaml")
    return copy.deepcopy(render_path(overlay))


def render_bootstrap() -> list[KubeObject]:
    """Every object ``manifests/bootstrap`` renders (a deep copy)."""
    return copy.deepcopy(render_path(MANIFESTS_DIR / BOOTSTRAP))


def site_values(overlay: str) -> dict[str, str]:
    """A site's values (``overlays/<name>/site.yaml``, read by components/site, never applied)."""
    site = yaml.safe_load((MANIFESTS_DIR / "overlays" / overlay / "site.yaml").read_text())
    return site["data"]


def find(objects: list[KubeObject], kind: str, name: str) -> KubeObject:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise KeyError(f"{kind}/{name} is not rendered")


def pod_templates(objects: list[KubeObject]) -> Iterator[tuple[KubeObject, KubeObject]]:
    """(workload, pod template) for every object that runs pods."""
    for obj in objects:
        if obj["kind"] in POD_TEMPLATE_KINDS:
            yield obj, obj["spec"]["template"]


def containers(pod_spec: KubeObject) -> list[KubeObject]:
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]
