"""Wait until applied workloads have rolled out; on timeout, say which pod is unhealthy and why.

Polls (no watch): the controller must have observed the newest generation and every
desired replica must be updated and available.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes.dynamic import DynamicClient

from orchestration.defs.rollout.manifests import KubeObject, object_ref

ROLLED_OUT_KINDS = {"Deployment", "StatefulSet", "DaemonSet"}


@dataclass
class RolloutProgress:
    ref: str
    done: bool
    detail: str


@dataclass
class RolloutResult:
    ok: bool
    seconds: float
    progress: list[RolloutProgress] = field(default_factory=list)
    unhealthy: list[dict[str, Any]] = field(default_factory=list)

    def failure_message(self, timeout_s: float) -> str:
        waiting = "; ".join(f"{p.ref}: {p.detail}" for p in self.progress if not p.done)
        lines = [f"not rolled out after {timeout_s:g} s: {waiting}"]
        for pod in self.unhealthy:
            lines.append(f"unhealthy pod {pod['pod']}: {pod['state']}")
            for event in pod["events"]:
                lines.append(f"  {event}")
        if not self.unhealthy:
            lines.append("no pods found for it: check the ReplicaSet/StatefulSet events (quota, admission webhooks)")
        return "\n".join(lines)


def _as_dict(obj: Any) -> dict[str, Any]:
    return obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)


def progress_of(live: KubeObject) -> RolloutProgress:
    ref = object_ref(live)
    meta, spec, status = live.get("metadata", {}), live.get("spec", {}), live.get("status") or {}
    generation = meta.get("generation", 0) or 0
    observed = status.get("observedGeneration", 0) or 0
    if observed < generation:
        return RolloutProgress(ref, False, f"controller has observed generation {observed} of {generation}")
    kind = live.get("kind")
    if kind == "DaemonSet":
        want = status.get("desiredNumberScheduled", 0) or 0
        have = {"updated": status.get("updatedNumberScheduled", 0) or 0, "available": status.get("numberAvailable", 0) or 0}
    else:
        want = spec.get("replicas", 1) if spec.get("replicas") is not None else 1
        have = {"updated": status.get("updatedReplicas", 0) or 0, "ready": status.get("readyReplicas", 0) or 0}
        if kind == "Deployment":
            have["available"] = status.get("availableReplicas", 0) or 0
    short = {k: v for k, v in have.items() if v < want}
    if short:
        return RolloutProgress(ref, False, ", ".join(f"{v}/{want} {k}" for k, v in short.items()))
    return RolloutProgress(ref, True, f"{want}/{want} available at generation {generation}")


def _selector_matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    # The API server filters by labelSelector already; matching here too keeps the
    # answer right whatever the server does with the parameter.
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        present = key in labels
        if op == "In" and (not present or labels[key] not in values):
            return False
        if op == "NotIn" and present and labels[key] in values:
            return False
        if op == "Exists" and not present:
            return False
        if op == "DoesNotExist" and present:
            return False
    return True


def _label_selector(selector: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items()))


def _pod_state(pod: dict[str, Any]) -> tuple[bool, str]:
    status = pod.get("status") or {}
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])
    parts = [f"phase {status.get('phase', 'Unknown')}"]
    for cond in status.get("conditions") or []:
        if cond.get("status") != "True" and (cond.get("reason") or cond.get("message")):
            parts.append(f"{cond.get('type')}: {cond.get('reason', '')} {cond.get('message', '')}".strip())
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        for state_name, state in (cs.get("state") or {}).items():
            if state_name != "running" and state:
                why = state.get("reason") or state_name
                msg = state.get("message")
                parts.append(f"container {cs.get('name')} {why}" + (f" ({msg})" if msg else ""))
        if cs.get("restartCount"):
            parts.append(f"container {cs.get('name')} restarted {cs['restartCount']} times")
    return ready, "; ".join(parts)


def _event_line(event: dict[str, Any]) -> str:
    when = event.get("lastTimestamp") or event.get("eventTime") or event.get("firstTimestamp") or ""
    count = event.get("count")
    times = f" (x{count})" if count and count > 1 else ""
    return f"[{event.get('type', '')} {event.get('reason', '')}] {event.get('message', '')}{times} {when}".rstrip()


def unhealthy_pods(
    dyn: DynamicClient, live: KubeObject, events_per_pod: int, timeout_s: float
) -> list[dict[str, Any]]:
    """The workload's pods that are not Ready, each with its state and last events."""
    namespace = live["metadata"].get("namespace")
    selector = (live.get("spec") or {}).get("selector") or {}
    pods_api = dyn.resources.get(api_version="v1", kind="Pod")
    events_api = dyn.resources.get(api_version="v1", kind="Event")
    pods = _as_dict(
        pods_api.get(namespace=namespace, label_selector=_label_selector(selector), _request_timeout=timeout_s)
    ).get("items", [])
    out = []
    for pod in pods:
        if not _selector_matches(selector, (pod.get("metadata") or {}).get("labels") or {}):
            continue
        ready, state = _pod_state(pod)
        if ready:
            continue
        name = pod["metadata"]["name"]
        events = _as_dict(
            events_api.get(
                namespace=namespace,
                field_selector=f"involvedObject.kind=Pod,involvedObject.name={name}",
                _request_timeout=timeout_s,
            )
        ).get("items", [])
        events = [e for e in events if (e.get("involvedObject") or {}).get("name") == name]
        events.sort(key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or e.get("firstTimestamp") or "")
        out.append({"pod": name, "state": state, "events": [_event_line(e) for e in events[-events_per_pod:]]})
    return out


def wait_rolled_out(
    dyn: DynamicClient,
    objects: list[KubeObject],
    timeout_s: float,
    poll_interval_s: float,
    request_timeout_s: float = 30.0,
    events_per_pod: int = 5,
    sleep: Callable[[float], None] = time.sleep,
) -> RolloutResult:
    workloads = [o for o in objects if o.get("kind") in ROLLED_OUT_KINDS]
    start = time.monotonic()
    deadline = start + timeout_s
    while True:
        lives = []
        for obj in workloads:
            api = dyn.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
            meta = obj["metadata"]
            lives.append(
                _as_dict(api.get(name=meta["name"], namespace=meta.get("namespace"), _request_timeout=request_timeout_s))
            )
        progress = [progress_of(live) for live in lives]
        if all(p.done for p in progress):
            return RolloutResult(True, time.monotonic() - start, progress)
        if time.monotonic() >= deadline:
            unhealthy = []
            for live, p in zip(lives, progress, strict=True):
                if not p.done:
                    unhealthy.extend(unhealthy_pods(dyn, live, events_per_pod, request_timeout_s))
            return RolloutResult(False, time.monotonic() - start, progress, unhealthy)
        sleep(poll_interval_s)
