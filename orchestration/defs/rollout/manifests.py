"""Render a kustomize overlay and split the result among the rollout assets.

Rendering needs only ``kubectl`` (its built-in kustomize), never a cluster, so it works
on a laptop and in CI.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from orchestration.defs.rollout.workloads import (
    APPLIED_ASSETS,
    FOUNDATION,
    FOUNDATION_KINDS,
    FOUNDATION_LABELS,
    NAME_LABEL,
    asset_for_label,
)

KubeObject = dict[str, Any]
_POD_TEMPLATE_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "ReplicaSet"}


# The site's values: a ConfigMap in the overlay, marked local-config, that components/site
# copies into the fields using them (manifests/components/site).
SITE_VALUES = "call-center-site"


class ManifestError(Exception):
    """The manifests cannot be rendered or do not fit the rollout's grouping."""


class MissingSiteValues(ManifestError):
    """The overlay leaves site values empty: required inputs nobody supplied yet."""


def _site_configmap(overlay_dir: Path) -> tuple[Path, dict[str, str]] | None:
    """(file, data) of the site-values ConfigMap among the overlay's own resource files."""
    kustomization = yaml.safe_load((overlay_dir / "kustomization.yaml").read_text()) or {}
    for entry in kustomization.get("resources") or []:
        path = overlay_dir / entry
        if not path.is_file():
            continue  # a directory (../../base) or a remote resource
        for doc in yaml.safe_load_all(path.read_text()):
            if (
                isinstance(doc, dict)
                and doc.get("kind") == "ConfigMap"
                and ((doc.get("metadata") or {}).get("name") == SITE_VALUES)
            ):
                return path, {str(k): "" if v is None else str(v) for k, v in (doc.get("data") or {}).items()}
    return None


def missing_site_values(overlay_dir: Path) -> list[str]:
    """The site values the overlay leaves empty, sorted. Every value a site file declares is
    required: an empty one would render an IAP policy with no client, a browser that accepts no
    analyst, SIP advertising pod IPs to the PSTN."""
    found = _site_configmap(overlay_dir)
    return sorted(key for key, value in found[1].items() if not value.strip()) if found else []


def render_overlay(
    overlay_dir: Path, kubectl: str = "kubectl", timeout_s: float = 60.0, *, require_site_values: bool = True
) -> list[KubeObject]:
    """``kubectl kustomize <overlay>``, parsed: every object the overlay renders, in order.

    With ``require_site_values`` (what the rollout applies) an overlay whose site values are
    not all supplied is refused, naming each; tests that only compare renders pass False."""
    if shutil.which(kubectl) is None:
        raise ManifestError(f"{kubectl!r} is not on PATH: install kubectl (it carries kustomize) to render manifests")
    if not (overlay_dir / "kustomization.yaml").is_file():
        raise ManifestError(f"no kustomization.yaml in {overlay_dir}: set the rollout overlay to an existing overlay")
    if require_site_values and (missing := missing_site_values(overlay_dir)):
        site_file, _ = _site_configmap(overlay_dir)  # type: ignore[misc]
        # manifests/overlays/<site>/site.yaml, as an operator finds it in the repository
        shown = site_file.relative_to(overlay_dir.parents[2]) if len(overlay_dir.parents) > 2 else site_file
        raise MissingSiteValues(
            f"site values not supplied: {', '.join(missing)}; set each in {shown} (what each is: the "
            "comments there, manifests/README.md). Nothing is applied until they are."
        )
    proc = subprocess.run(
        [kubectl, "kustomize", str(overlay_dir)], capture_output=True, text=True, timeout=timeout_s, check=False
    )
    if proc.returncode != 0:
        raise ManifestError(f"kubectl kustomize {overlay_dir} failed: {proc.stderr.strip()}")
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


def object_ref(obj: KubeObject) -> str:
    """``Kind/namespace/name`` (or ``Kind/name`` when cluster-scoped): how messages name an object."""
    meta = obj.get("metadata", {})
    ns = meta.get("namespace")
    return f"{obj.get('kind')}/{ns}/{meta.get('name')}" if ns else f"{obj.get('kind')}/{meta.get('name')}"


def owning_asset(obj: KubeObject) -> str | None:
    label = obj.get("metadata", {}).get("labels", {}).get(NAME_LABEL)
    if obj.get("kind") in FOUNDATION_KINDS or label in FOUNDATION_LABELS:
        return FOUNDATION
    return asset_for_label(label)


def group_by_asset(objects: Iterable[KubeObject]) -> dict[str, list[KubeObject]]:
    """Every rendered object, under the asset that applies it. Unclaimed objects are an error:
    the rollout must apply exactly what the manifests render, nothing silently skipped."""
    groups: dict[str, list[KubeObject]] = {asset: [] for asset in APPLIED_ASSETS}
    unclaimed: list[str] = []
    for obj in objects:
        asset = owning_asset(obj)
        if asset is None:
            label = obj.get("metadata", {}).get("labels", {}).get(NAME_LABEL)
            unclaimed.append(f"{object_ref(obj)} ({NAME_LABEL}={label!r})")
        else:
            groups[asset].append(obj)
    if unclaimed:
        raise ManifestError(
            "no rollout asset applies these rendered objects; label them with a workload's "
            f"{NAME_LABEL} (see orchestration/defs/rollout/workloads.py): " + ", ".join(unclaimed)
        )
    return groups


def pod_spec(obj: KubeObject) -> dict[str, Any] | None:
    if obj.get("kind") in _POD_TEMPLATE_KINDS:
        return obj.get("spec", {}).get("template", {}).get("spec")
    if obj.get("kind") == "CronJob":
        return obj.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template", {}).get("spec")
    if obj.get("kind") == "Pod":
        return obj.get("spec")
    return None


def _containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers", []) or []
    yield from spec.get("containers", []) or []


def images(objects: Iterable[KubeObject]) -> dict[str, str]:
    """``Kind/name/container`` -> image, for the materialization's "images and versions"."""
    found: dict[str, str] = {}
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        for container in _containers(spec):
            found[f"{obj['kind']}/{obj['metadata']['name']}/{container.get('name')}"] = container.get("image", "")
    return found


@dataclass(frozen=True)
class SecretReference:
    namespace: str
    secret: str
    key: str | None
    referenced_by: str
    optional: bool


def secret_references(objects: Iterable[KubeObject]) -> list[SecretReference]:
    """Every Secret a pod template reads: env, envFrom, volumes (projected too), image pull secrets."""
    refs: list[SecretReference] = []
    for obj in objects:
        spec = pod_spec(obj)
        if spec is None:
            continue
        ns = obj.get("metadata", {}).get("namespace", "default")
        by = object_ref(obj)

        def add(name: str | None, key: str | None, optional: bool | None, ns: str = ns, by: str = by) -> None:
            if name:
                refs.append(SecretReference(ns, name, key, by, bool(optional)))

        for container in _containers(spec):
            for env in container.get("env", []) or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    add(ref.get("name"), ref.get("key"), ref.get("optional"))
            for source in container.get("envFrom", []) or []:
                ref = source.get("secretRef")
                if ref:
                    add(ref.get("name"), None, ref.get("optional"))
        for volume in spec.get("volumes", []) or []:
            if "secret" in volume:
                add(volume["secret"].get("secretName"), None, volume["secret"].get("optional"))
            for source in (volume.get("projected") or {}).get("sources", []) or []:
                if "secret" in source:
                    add(source["secret"].get("name"), None, source["secret"].get("optional"))
        for pull in spec.get("imagePullSecrets", []) or []:
            add(pull.get("name"), None, False)
    return refs


def dump(objects: Iterable[KubeObject]) -> str:
    return yaml.safe_dump_all(list(objects), sort_keys=True)


def by_kind_count(objects: Iterable[KubeObject]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for obj in objects:
        counts[obj.get("kind", "?")] += 1
    return dict(counts)
