"""Access to the cluster through the ``kubernetes`` client: in-cluster or a kubeconfig context."""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from kubernetes import client, config
from kubernetes.dynamic import DynamicClient

IN_CLUSTER = "in-cluster"
CONTEXT_ENV = "CALLCENTER_KUBE_CONTEXT"


class KubernetesNotConfigured(dg.Failure):
    pass


class KubernetesResource(dg.ConfigurableResource):
    """Which cluster the rollout talks to.

    ``context``: ``in-cluster`` (the pod's service account, as Dagster runs on GKE) or the
    name of a kubeconfig context (an operator's laptop). ``kubeconfig``: the file holding
    that context; empty means the client's default (``$KUBECONFIG`` or ``~/.kube/config``).
    """

    context: str = ""
    kubeconfig: str = ""
    request_timeout_s: float = 30.0

    def require_configured(self) -> None:
        if not self.context:
            raise KubernetesNotConfigured(
                description=(
                    "No Kubernetes cluster is configured for the rollout: set "
                    f"{CONTEXT_ENV} to a context in your kubeconfig (KUBECONFIG, default ~/.kube/config) "
                    f"or to '{IN_CLUSTER}' when Dagster runs in the cluster, with CALLCENTER_DEPLOYMENT=gke. "
                    "Rendering and validating the manifests needs no cluster (kubectl kustomize)."
                )
            )

    def api_client(self) -> client.ApiClient:
        self.require_configured()
        configuration = client.Configuration()
        if self.context == IN_CLUSTER:
            config.load_incluster_config(client_configuration=configuration)
        else:
            try:
                config.load_kube_config(
                    config_file=self.kubeconfig or None,
                    context=self.context,
                    client_configuration=configuration,
                )
            except (config.ConfigException, FileNotFoundError) as e:
                where = self.kubeconfig or "KUBECONFIG / ~/.kube/config"
                raise KubernetesNotConfigured(
                    description=f"cannot use kubeconfig context {self.context!r} from {where}: {e}. "
                    f"Fix {CONTEXT_ENV} or KUBECONFIG."
                ) from e
        return client.ApiClient(configuration)

    @contextmanager
    def connect(self) -> Iterator[tuple[client.ApiClient, DynamicClient]]:
        api = self.api_client()
        try:
            yield api, DynamicClient(api, cache_file=_discovery_cache(api.configuration.host))
        finally:
            api.close()


_CACHE_DIR: Path | None = None


def _discovery_cache(host: str) -> str:
    """One discovery cache per API server and process: every step of a run reuses it (a
    resource missing from it makes the client discover again), and no process reads
    another's stale file, as the library's shared default in /tmp would allow."""
    global _CACHE_DIR
    if _CACHE_DIR is None:
        _CACHE_DIR = Path(tempfile.mkdtemp(prefix=f"callcenter-kube-discovery-{os.getpid()}-"))
    return str(_CACHE_DIR / f"{hashlib.sha256(host.encode()).hexdigest()[:16]}.json")
