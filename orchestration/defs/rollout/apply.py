"""Server-side apply of rendered objects, skipping those the cluster already matches.

Each object is read first; if every field the manifests set already has that value in the
cluster, nothing is sent (a re-run with no change applies nothing and says so). Otherwise
the object is applied with ``PATCH`` ``application/apply-patch+yaml`` under our field
manager, without forcing: a field another manager set to another value (``kubectl edit``, a
controller) fails the apply naming the field and that manager, and a change the API server
refuses (an immutable field, a field the schema lacks) fails naming the object and the field.
"""

from __future__ import annotations

import base64
import difflib
import json
from dataclasses import dataclass, field
from typing import Any

import yaml
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import (
    ConflictError,
    DynamicApiError,
    ForbiddenError,
    NotFoundError,
    ResourceNotFoundError,
)
from kubernetes.utils.quantity import parse_quantity

from orchestration.defs.rollout.manifests import KubeObject, ManifestError, object_ref

# Fields the API server owns or adds; never part of what we compare.
_SERVER_METADATA = {"managedFields", "resourceVersion", "uid", "generation", "creationTimestamp", "selfLink"}
_QUANTITY_KEYS = {"requests", "limits", "capacity", "storage", "sizeLimit", "ephemeral-storage", "memory", "cpu"}


@dataclass
class ApplyOutcome:
    ref: str
    action: str  # created | configured | unchanged | skipped
    diff: str = ""
    reason: str = ""


@dataclass
class ApplyReport:
    outcomes: list[ApplyOutcome] = field(default_factory=list)

    @property
    def changed(self) -> list[ApplyOutcome]:
        return [o for o in self.outcomes if o.action in ("created", "configured")]

    @property
    def diff(self) -> str:
        return "".join(o.diff for o in self.changed)

    def summary(self) -> str:
        if not self.changed:
            return f"no change: all {len(self.outcomes)} objects already match the manifests; nothing applied"
        counts: dict[str, int] = {}
        for o in self.outcomes:
            counts[o.action] = counts.get(o.action, 0) + 1
        return ", ".join(f"{n} {action}" for action, n in sorted(counts.items()))


def resource_for(dyn: DynamicClient, obj: KubeObject) -> Any:
    try:
        return dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    except ResourceNotFoundError as e:
        raise ManifestError(
            f"the cluster does not serve {obj['apiVersion']} {obj['kind']} (needed by {object_ref(obj)}): "
            "install its CRDs or enable the API first"
        ) from e


class RolloutForbidden(ManifestError):
    """The rollout's identity may not read or apply an object."""


def _forbidden(verb: str, obj: KubeObject, e: ForbiddenError) -> RolloutForbidden:
    return RolloutForbidden(
        f"the rollout's service account may not {verb} {object_ref(obj)} ({e.summary()}): grant it in "
        "manifests/bootstrap/rollout-rbac.yaml (cluster-scoped kinds need a ClusterRole)"
    )


class ApplyConflict(ManifestError):
    """Fields the manifests set are owned by another field manager with another value."""


class ApplyRefused(ManifestError):
    """The API server refused the object: invalid, an immutable field changed, unknown fields."""


def _status(e: DynamicApiError) -> dict[str, Any]:
    try:
        body = json.loads(e.body) if isinstance(e.body, str | bytes) else {}
    except ValueError:
        body = {}
    return body if isinstance(body, dict) else {}


def _conflict(obj: KubeObject, e: ConflictError, field_manager: str) -> ApplyConflict:
    status = _status(e)
    causes = (status.get("details") or {}).get("causes") or []
    fields = [f"{c.get('field')} ({c.get('message')})" for c in causes if c.get("field")]
    what = "; ".join(fields) or status.get("message") or e.summary()
    return ApplyConflict(
        f"{object_ref(obj)}: the API server refused the apply: field(s) the manifests set are owned by another "
        f"field manager with another value: {what}. The rollout never takes a field over silently: remove the field "
        "from the manifests, have that manager release it, or take it over deliberately with `kubectl kustomize "
        f"<overlay> | kubectl apply --server-side --force-conflicts --field-manager={field_manager} -f -` "
        "and run the rollout again (docs/rollout.md)"
    )


_IMMUTABLE = ("field is immutable", "may not change once set")


def _refused(obj: KubeObject, e: DynamicApiError) -> ApplyRefused:
    status = _status(e)
    causes = (status.get("details") or {}).get("causes") or []
    fields = [f"{c.get('field')}: {c.get('message')}" for c in causes if c.get("field")]
    what = "; ".join(fields) or status.get("message") or e.summary()
    ref = object_ref(obj)
    if any(marker in what for marker in _IMMUTABLE):
        meta = obj["metadata"]
        namespace = f" -n {meta['namespace']}" if meta.get("namespace") else ""
        return ApplyRefused(
            f"{ref}: the manifests change an immutable field, which cannot change in place: {what}. Delete the "
            f"object (`kubectl delete {obj['kind'].lower()}{namespace} {meta['name']}`; it stops serving until it "
            "is back) and run the rollout again to recreate it, or revert the change (docs/rollout.md)"
        )
    return ApplyRefused(f"{ref}: the API server refused it ({e.status} {status.get('reason') or e.reason}): {what}")


def read_live(dyn: DynamicClient, obj: KubeObject, timeout_s: float) -> KubeObject | None:
    meta = obj["metadata"]
    try:
        live = resource_for(dyn, obj).get(
            name=meta["name"], namespace=meta.get("namespace"), _request_timeout=timeout_s
        )
    except NotFoundError:
        return None
    except ForbiddenError as e:
        raise _forbidden("get", obj, e) from e
    return live.to_dict()


def _normalize_secret(obj: KubeObject) -> KubeObject:
    """The API server stores ``stringData`` as base64 ``data``; compare like with like."""
    if obj.get("kind") != "Secret" or "stringData" not in obj:
        return obj
    out = dict(obj)
    data = dict(out.get("data") or {})
    for key, value in out.pop("stringData").items():
        data[key] = base64.b64encode(str(value).encode()).decode()
    out["data"] = data
    return out


def _same_scalar(want: Any, have: Any, key: str) -> bool:
    if want == have:
        return True
    if isinstance(want, bool) or isinstance(have, bool):
        return False
    if isinstance(want, int | float | str) and isinstance(have, int | float | str) and str(want) == str(have):
        return True
    if key in _QUANTITY_KEYS or key.endswith("Limit"):
        try:
            return parse_quantity(want) == parse_quantity(have)
        except (ValueError, TypeError):
            return False
    return False


def project(want: Any, have: Any, key: str = "") -> Any:
    """The live value restricted to the fields the manifests set (``have`` seen through ``want``)."""
    if isinstance(want, dict):
        if not isinstance(have, dict):
            return have
        return {k: project(v, have.get(k), k) for k, v in want.items() if k in have}
    if isinstance(want, list):
        if not isinstance(have, list):
            return have
        return [project(w, h, key) for w, h in zip(want, have, strict=False)] + have[len(want) :]
    if have is not None and _same_scalar(want, have, key):
        return want  # a server normalisation (1000m vs 1) is no change
    return have


def comparable(obj: KubeObject) -> KubeObject:
    obj = _normalize_secret(obj)
    out = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in _SERVER_METADATA}
    out["metadata"] = meta
    return out


# Key fields of list maps that the API server defaults before it records the key in
# managedFields: a container port or Service port given without ``protocol`` is recorded as
# ``k:{"containerPort":8000,"protocol":"TCP"}``.
_DEFAULTED_KEYS = {"protocol": "TCP"}


def _key_matches(item: dict[str, Any], wanted: dict[str, Any]) -> bool:
    return all(item.get(k, _DEFAULTED_KEYS.get(k)) == v for k, v in wanted.items())


def _list_item(items: list[Any], key: str) -> Any:
    """The element of ``items`` a managedFields list key (``k:{"name":"vllm"}``, ``v:"x"``) names."""
    kind, _, raw = key.partition(":")
    try:
        wanted = json.loads(raw)
    except ValueError:
        return None
    for item in items:
        if kind == "k" and isinstance(item, dict) and isinstance(wanted, dict) and _key_matches(item, wanted):
            return item
        if kind == "v" and item == wanted:
            return item
    return None


def owned_but_unset(desired: Any, fields: dict[str, Any], path: str = "") -> list[str]:
    """Fields our field manager applied before (its ``fieldsV1``) that the manifests no longer
    set: server-side apply removes them on the next apply, so they are a change too."""
    gone: list[str] = []
    for key, child in fields.items():
        if key == ".":
            continue
        if key.startswith("f:"):
            name = key[2:]
            if not isinstance(desired, dict) or name not in desired:
                gone.append(f"{path}.{name}".lstrip("."))
            elif child:
                gone.extend(owned_but_unset(desired[name], child, f"{path}.{name}"))
        elif key.startswith(("k:", "v:")) and isinstance(desired, list):
            item = _list_item(desired, key)
            if item is None:
                gone.append(f"{path}[{key[2:]}]")
            elif child:
                gone.extend(owned_but_unset(item, child, f"{path}[{key[2:]}]"))
    return gone


def _our_fields(live: KubeObject, field_manager: str) -> dict[str, Any]:
    for entry in (live.get("metadata") or {}).get("managedFields") or []:
        if entry.get("manager") == field_manager and entry.get("operation") == "Apply":
            return entry.get("fieldsV1") or {}
    return {}


def drift(desired: KubeObject, live: KubeObject | None, field_manager: str = "") -> str:
    """A unified diff from the live object to the rendered one; empty when they match."""
    want = comparable(desired)
    have = project(want, comparable(live)) if live is not None else {}
    removed = owned_but_unset(desired, _our_fields(live, field_manager)) if live is not None and field_manager else []
    if have == want and not removed:
        return ""
    ref = object_ref(desired)
    before = yaml.safe_dump(have, sort_keys=True).splitlines(keepends=True) if have else []
    after = yaml.safe_dump(want, sort_keys=True).splitlines(keepends=True)
    diff = "".join(difflib.unified_diff(before, after, fromfile=f"live/{ref}", tofile=f"rendered/{ref}"))
    if removed:
        header = "" if diff else f"--- live/{ref}\n+++ rendered/{ref}\n"
        diff += header + "".join(f"- {path}   (applied before, no longer in the manifests)\n" for path in removed)
    return diff


def apply_objects(
    dyn: DynamicClient, objects: list[KubeObject], field_manager: str, timeout_s: float
) -> ApplyReport:
    report = ApplyReport()
    for obj in objects:
        ref = object_ref(obj)
        if obj.get("kind") == "Secret":
            # Secret values never come from git: operators create them (docs/rollout.md);
            # applying a template would overwrite a real credential with a placeholder.
            report.outcomes.append(ApplyOutcome(ref, "skipped", reason="secrets are created by operators"))
            continue
        live = read_live(dyn, obj, timeout_s)
        diff = drift(obj, live, field_manager)
        if not diff:
            report.outcomes.append(ApplyOutcome(ref, "unchanged"))
            continue
        meta = obj["metadata"]
        try:
            resource_for(dyn, obj).server_side_apply(
                body=obj,
                name=meta["name"],
                namespace=meta.get("namespace"),
                field_manager=field_manager,
                _request_timeout=timeout_s,
            )
        except ForbiddenError as e:
            raise _forbidden("patch", obj, e) from e
        except ConflictError as e:
            raise _conflict(obj, e, field_manager) from e
        except DynamicApiError as e:
            if e.status in (400, 422, 500) and _status(e).get("kind") == "Status":
                raise _refused(obj, e) from e
            raise
        report.outcomes.append(ApplyOutcome(ref, "created" if live is None else "configured", diff=diff))
    return report
