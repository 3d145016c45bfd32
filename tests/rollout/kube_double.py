"""A Kubernetes API server double for rollout tests: kmock's emulator plus what it lacks.

kmock (PyPI ``kmock``) serves discovery, list/get/create/merge-patch/delete of objects
kept in memory, and records every request. The rollout needs three more things that a
real kube-apiserver does, added here at the protocol level:

* server-side apply: ``PATCH`` with ``application/apply-patch+yaml`` creates a missing
  object, requires ``fieldManager``, replaces the fields it sets (one manager owns them
  all here), bumps ``metadata.generation`` when the spec changes and records the manager
  in ``managedFields``;
* paths of the cluster-scoped ``namespaces`` resource (kmock reads
  ``/api/v1/namespaces/<name>`` as a namespace, not an object);
* a controller that flips readiness: Deployment/StatefulSet status and Pods (with
  conditions and Events) become ready, or never do, as a test asks.

The server runs on 127.0.0.1 in its own thread, so synchronous code (the real
``kubernetes`` client inside a Dagster run) can talk to it.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import itertools
import json
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal import enums

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"

# (apiVersion, kind) -> (plural, namespaced): what discovery serves.
BUILTIN_RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "Namespace"): ("namespaces", False),
    ("v1", "ServiceAccount"): ("serviceaccounts", True),
    ("v1", "Secret"): ("secrets", True),
    ("v1", "ConfigMap"): ("configmaps", True),
    ("v1", "Service"): ("services", True),
    ("v1", "Pod"): ("pods", True),
    ("v1", "Event"): ("events", True),
    ("v1", "PersistentVolumeClaim"): ("persistentvolumeclaims", True),
    ("apps/v1", "Deployment"): ("deployments", True),
    ("apps/v1", "StatefulSet"): ("statefulsets", True),
    ("apps/v1", "DaemonSet"): ("daemonsets", True),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("networkpolicies", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("rolebindings", True),
}


def plural_of(kind: str) -> str:
    lower = kind.lower()
    if lower.endswith("y"):
        return lower[:-1] + "ies"
    if lower.endswith(("s", "x", "ch")):
        return lower + "es"
    return lower + "s"


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@attrs.define(kw_only=True)
class ApiServerDouble(kmock.KubernetesEmulator):
    _versions: itertools.count = attrs.field(factory=lambda: itertools.count(1), init=False)
    pod_logs: dict[str, str] = attrs.field(factory=dict, init=False)  # pod name -> its log text
    forbidden: set[str] = attrs.field(factory=set, init=False)  # plurals our identity may not touch (RBAC)

    def serve_kind(self, api_version: str, kind: str, namespaced: bool = True, plural: str | None = None) -> None:
        group, _, version = api_version.rpartition("/")
        self.resources[kmock.resource(group=group, version=version, plural=plural or plural_of(kind))] = (
            kmock.ResourceInfo(kind=kind, namespaced=namespaced, verbs={"get", "list", "patch", "create", "delete"})
        )

    def _key(self, api_version: str, kind: str, namespace: str | None, name: str) -> tuple[kmock.resource, str | None, str]:
        plural = BUILTIN_RESOURCES.get((api_version, kind), (plural_of(kind), True))[0]
        group, _, version = api_version.rpartition("/")
        return kmock.resource(group=group, version=version, plural=plural), namespace, name

    # --- protocol additions ------------------------------------------------------------
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        request = self._namespaces_path(request)
        if request.resource is not None and request.resource.plural in self.forbidden:
            raise kmock.KubernetesError(
                status=403,
                reason="Forbidden",
                message=f'{request.resource.plural} "{request.name}" is forbidden: User '
                '"system:serviceaccount:call-center:dagster" cannot get resource '
                f'"{request.resource.plural}" in API group "{request.resource.group}" at the cluster scope',
            )
        content_type = request.headers.get("Content-Type", "")
        if request.method == enums.method.PATCH and content_type.startswith(APPLY_CONTENT_TYPE):
            return await self._apply(request)
        if request.resource is not None and request.resource.plural == "pods" and request.subresource == "log":
            return aiohttp.web.Response(text=self.pod_logs.get(request.name or "", ""), content_type="text/plain")
        if request.resource is not None and request.resource.plural == "namespaces" and request.method == enums.method.GET:
            return await self._read_namespaces(request)
        return await super()._handle(request)

    async def _serve_list(self, request: kmock.Request) -> Any:
        # A real list names its kind (PodList, ...); the dynamic client relies on it.
        payload = await super()._serve_list(request)
        info = self.resources.get(request.resource, None)
        payload["kind"] = f"{info.kind if info and info.kind else 'Object'}List"
        group, version = request.resource.group, request.resource.version
        payload["apiVersion"] = f"{group}/{version}" if group else version
        return payload

    async def _read_namespaces(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        async with self._lock:
            found = [
                o.raw
                for (res, _, name), o in self.objects.items()
                if res.plural == "namespaces" and not o.deleted and (request.name is None or name == request.name)
            ]
        if request.name is None:
            return aiohttp.web.json_response({"kind": "NamespaceList", "apiVersion": "v1", "items": found})
        if not found:
            raise kmock.KubernetesObjectNotFoundError()
        return aiohttp.web.json_response(found[0])

    def _namespaces_path(self, request: kmock.Request) -> kmock.Request:
        parts = request.url.path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "namespaces"] and len(parts) <= 4:
            name = parts[3] if len(parts) == 4 else None
            action = request.action
            if request.method == enums.method.GET:
                action = enums.action.FETCH if name else enums.action.LIST
            elif request.method == enums.method.PATCH:
                action = enums.action.UPDATE
            return attrs.evolve(
                request,
                resource=kmock.resource(group="", version="v1", plural="namespaces"),
                namespace=None,
                name=name,
                action=action,
            )
        return request

    async def _apply(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        manager = request.params.get("fieldManager")
        if not manager:
            raise kmock.KubernetesError(
                status=422, reason="Invalid", message="fieldManager is required for apply requests"
            )
        body = request.data if isinstance(request.data, dict) else yaml.safe_load(request.text)
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            exists = key in self.objects and not self.objects[key].deleted
            if not exists:
                new = copy.deepcopy(body)
                meta = new.setdefault("metadata", {})
                meta.update(uid=str(uuid.uuid4()), generation=1, creationTimestamp=_now())
            else:
                live = self.objects[key].raw
                new = copy.deepcopy(live)
                for field, value in body.items():
                    if field == "metadata":
                        for owned in ("labels", "annotations"):
                            if owned in value:
                                new["metadata"][owned] = copy.deepcopy(value[owned])
                    elif field != "status":
                        new[field] = copy.deepcopy(value)
                if new.get("spec") != live.get("spec"):
                    new["metadata"]["generation"] = live["metadata"].get("generation", 1) + 1
            new["metadata"]["resourceVersion"] = str(next(self._versions))
            new["metadata"]["managedFields"] = [
                {"manager": manager, "operation": "Apply", "apiVersion": body.get("apiVersion"), "time": _now()}
            ]
            self.objects[key] = new
        return aiohttp.web.json_response(new, status=200 if exists else 201)


class ClusterDouble:
    """The API server double on loopback, with helpers that play the kube controllers."""

    def __init__(self) -> None:
        self.api = ApiServerDouble()
        for (api_version, kind), (plural, namespaced) in BUILTIN_RESOURCES.items():
            self.api.serve_kind(api_version, kind, namespaced, plural)
        self.never_ready: dict[str, str] = {}  # workload name -> waiting reason
        self.pod_events: dict[str, list[str]] = {}  # workload name -> event messages
        self.logs: dict[str, str] = {}  # workload name -> what its pods log once running
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-double", daemon=True)
        self._server: kmock.Server | None = None
        self._controller: asyncio.Future | None = None
        self.controller_enabled = True

    # --- lifecycle -------------------------------------------------------------------
    def __enter__(self) -> ClusterDouble:
        self._thread.start()

        async def start() -> kmock.Server:
            await self.api.__aenter__()
            server = kmock.Server(self.api)
            await server.__aenter__()
            return server

        self._server = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        self._controller = asyncio.run_coroutine_threadsafe(self._reconcile_forever(), self._loop)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._controller:
            self._controller.cancel()

        async def stop() -> None:
            assert self._server is not None
            await self._server.__aexit__(None, None, None)
            await self.api.__aexit__(None, None, None)

        asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.port}"

    def write_kubeconfig(self, path: Path, context: str = "kube-double") -> Path:
        path.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "double", "cluster": {"server": self.url}}],
                    "users": [{"name": "operator", "user": {"token": "operator-token"}}],
                    "contexts": [{"name": context, "context": {"cluster": "double", "user": "operator"}}],
                    "current-context": context,
                }
            )
        )
        return path

    def _call(self, fn: Any, *args: Any) -> Any:
        async def locked() -> Any:
            async with self.api._lock:
                return fn(*args)

        return asyncio.run_coroutine_threadsafe(locked(), self._loop).result(10)

    # --- state, for tests ------------------------------------------------------------
    def serve_kinds_of(self, objects: Iterable[dict[str, Any]]) -> None:
        """Serve discovery for any extra kind (CRDs: Gateway, UDPRoute, ...) the manifests use."""
        for obj in objects:
            if (obj["apiVersion"], obj["kind"]) not in BUILTIN_RESOURCES:
                self.api.serve_kind(obj["apiVersion"], obj["kind"], "namespace" in obj.get("metadata", {}))

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            key = self.api._key(api_version, kind, namespace, name)
            if key in self.api.objects and not self.api.objects[key].deleted:
                return copy.deepcopy(self.api.objects[key].raw)
            return None

        return self._call(read)

    def put(self, obj: dict[str, Any]) -> None:
        """Create or replace an object as if someone else had (a Secret, an edit by hand)."""

        def write() -> None:
            meta = obj["metadata"]
            self.api.objects[self.api._key(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])] = (
                copy.deepcopy(obj)
            )

        self._call(write)

    def objects_of(self, kind: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            return [
                copy.deepcopy(o.raw)
                for (res, _, _), o in self.api.objects.items()
                if not o.deleted and o.raw.get("kind") == kind
            ]

        return self._call(read)

    def requests(self) -> list[kmock.Request]:
        return list(self.api._requests)

    def writes(self) -> list[kmock.Request]:
        return [r for r in self.api._requests if r.method in (enums.method.PATCH, enums.method.POST, enums.method.PUT)]

    def clear_requests(self) -> None:
        self._call(lambda: self.api._requests.clear())

    # --- the controllers' part: readiness ----------------------------------------------
    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            if self.controller_enabled:
                async with self.api._lock:
                    self._reconcile()

    def _reconcile(self) -> None:
        for (res, namespace, name), obj in list(self.api.objects.items()):
            if obj.deleted or res.plural not in ("deployments", "statefulsets"):
                continue
            live = obj.raw
            if name in self.never_ready:
                self._stuck(live, namespace, name)
            else:
                self._ready(live, namespace, name)

    def _pod(self, live: dict[str, Any], namespace: str, name: str, ready: bool) -> dict[str, Any]:
        labels = live["spec"]["template"]["metadata"].get("labels", {})
        containers = live["spec"]["template"]["spec"].get("containers", [])
        reason = self.never_ready.get(name, "")
        statuses = [
            {
                "name": c["name"],
                "image": c.get("image"),
                "imageID": f"{c.get('image')}@sha256:{'0' * 64}",
                "ready": ready,
                "restartCount": 0 if ready else 4,
                "state": {"running": {"startedAt": _now()}}
                if ready
                else {"waiting": {"reason": reason, "message": f"back-off restarting failed container {c['name']}"}},
            }
            for c in containers
        ]
        return {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"{name}-7d9f8-0", "namespace": namespace, "labels": dict(labels)},
            "spec": copy.deepcopy(live["spec"]["template"]["spec"]),
            "status": {
                "phase": "Running",
                "conditions": [
                    {"type": "Ready", "status": "True" if ready else "False", "reason": "" if ready else "ContainersNotReady"}
                ],
                "containerStatuses": statuses,
            },
        }

    def _ready(self, live: dict[str, Any], namespace: str, name: str) -> None:
        replicas = live["spec"].get("replicas", 1)
        generation = live["metadata"].get("generation", 1)
        status = {
            "observedGeneration": generation,
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        }
        if live.get("status") != status:
            self.api.objects[self.api._key(live["apiVersion"], live["kind"], namespace, name)].patch({"status": status})
            pod = self._pod(live, namespace, name, ready=True)
            self.api.objects[self.api._key("v1", "Pod", namespace, pod["metadata"]["name"])] = pod
            self.api.pod_logs[pod["metadata"]["name"]] = self.logs.get(name, "")

    def _stuck(self, live: dict[str, Any], namespace: str, name: str) -> None:
        replicas = live["spec"].get("replicas", 1)
        status = {
            "observedGeneration": live["metadata"].get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": 0,
            "availableReplicas": 0,
            "unavailableReplicas": replicas,
        }
        key = self.api._key(live["apiVersion"], live["kind"], namespace, name)
        if live.get("status") == status:
            return
        self.api.objects[key].patch({"status": status})
        pod = self._pod(live, namespace, name, ready=False)
        pod_name = pod["metadata"]["name"]
        self.api.objects[self.api._key("v1", "Pod", namespace, pod_name)] = pod
        for i, message in enumerate(self.pod_events.get(name, [])):
            event_name = f"{pod_name}.{i:04d}"
            self.api.objects[self.api._key("v1", "Event", namespace, event_name)] = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": event_name, "namespace": namespace},
                "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": namespace},
                "type": "Warning",
                "reason": "BackOff" if i else "FailedMount",
                "message": message,
                "lastTimestamp": f"2026-01-01T00:00:{i:02d}Z",
                "count": 1,
            }


def request_body(request: kmock.Request) -> Any:
    return request.data if request.data is not None else json.loads(request.text)
