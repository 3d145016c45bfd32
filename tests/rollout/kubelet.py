"""A stand-in for the controllers and kubelets of the real control plane (devstack/control_plane.py),
for the rollout's tests: nothing else runs there to report a workload's status."""

from __future__ import annotations

import datetime
import threading
from typing import Any


class Kubelet:
    """What the controllers and kubelets would write, as a background thread: every Deployment
    and StatefulSet in a namespace named in ``ready`` reports its generation observed and every
    replica ready; one named in ``failing`` gets a Pod stuck with that waiting reason and a
    Warning Event about it, as a crash-looping or unschedulable pod would."""

    def __init__(self, api: Any, namespace: str, interval_s: float = 0.05) -> None:
        from kubernetes import client

        self.apps = client.AppsV1Api(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.interval_s = interval_s
        self.ready: set[str] = set()
        self.failing: dict[str, str] = {}  # workload name -> container waiting reason
        self._pods_made: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"kubelet-{namespace}", daemon=True)
        self.errors: list[str] = []

    def __enter__(self) -> Kubelet:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        assert not self.errors, self.errors

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._tick()
            except Exception as e:  # reported at exit: a broken stand-in must not pass silently
                self.errors.append(repr(e))
                return

    def _tick(self) -> None:
        ns = self.namespace
        for kind, items, patch in (
            (
                "Deployment",
                self.apps.list_namespaced_deployment(ns).items,
                self.apps.patch_namespaced_deployment_status,
            ),
            (
                "StatefulSet",
                self.apps.list_namespaced_stateful_set(ns).items,
                self.apps.patch_namespaced_stateful_set_status,
            ),
        ):
            for workload in items:
                name = workload.metadata.name
                generation = workload.metadata.generation
                replicas = workload.spec.replicas if workload.spec.replicas is not None else 1
                status = workload.status
                ready = name in self.ready
                want = replicas if ready else 0
                if (
                    status is not None
                    and status.observed_generation == generation
                    and (status.ready_replicas or 0) == want
                ):
                    continue
                body: dict[str, Any] = {
                    "observedGeneration": generation,
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "readyReplicas": want,
                    "availableReplicas": want,
                }
                if kind == "StatefulSet":
                    body["currentReplicas"] = replicas
                patch(name, ns, {"status": body})
                if name in self.failing and name not in self._pods_made:
                    self._failing_pod(workload)
                    self._pods_made.add(name)

    def _failing_pod(self, workload: Any) -> None:
        from kubernetes import client

        name = workload.metadata.name
        reason = self.failing[name]
        api = client.ApiClient()
        template = api.sanitize_for_serialization(workload.spec.template)
        pod_name = f"{name}-7d9f8-0"
        self.core.create_namespaced_pod(
            self.namespace,
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": pod_name, "labels": template["metadata"].get("labels", {})},
                "spec": template["spec"],
            },
        )
        container = template["spec"]["containers"][0]["name"]
        self.core.patch_namespaced_pod_status(
            pod_name,
            self.namespace,
            {
                "status": {
                    "phase": "Running",
                    "conditions": [
                        {
                            "type": "Ready",
                            "status": "False",
                            "reason": "ContainersNotReady",
                            "message": f"containers with unready status: [{container}]",
                        }
                    ],
                    "containerStatuses": [
                        {
                            "name": container,
                            "image": template["spec"]["containers"][0]["image"],
                            "imageID": "",
                            "ready": False,
                            "restartCount": 4,
                            "state": {
                                "waiting": {
                                    "reason": reason,
                                    "message": f"back-off restarting failed container {container}",
                                }
                            },
                        }
                    ],
                }
            },
        )
        now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.core.create_namespaced_event(
            self.namespace,
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": f"{pod_name}.backoff"},
                "involvedObject": {"kind": "Pod", "name": pod_name, "namespace": self.namespace, "apiVersion": "v1"},
                "type": "Warning",
                "reason": "BackOff",
                "message": f"Back-off restarting failed container {container} in pod {pod_name}",
                "count": 7,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "source": {"component": "kubelet"},
            },
        )
