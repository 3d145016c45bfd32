"""Which rendered objects each rollout asset owns, in the order the cluster comes up.

Objects are claimed by their ``app.kubernetes.io/name`` label; the namespace, service
accounts, RBAC and secret templates go first, whatever their label, because every
workload needs them before its pods can start.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

NAME_LABEL = "app.kubernetes.io/name"

# Kinds that belong to namespace_and_secrets whatever workload they are labelled for.
FOUNDATION_KINDS = frozenset(
    {"Namespace", "ServiceAccount", "Secret", "Role", "RoleBinding", "ResourceQuota", "LimitRange"}
)
# Configuration every workload reads (the site's domain, bucket, SIP addresses).
FOUNDATION_LABELS = frozenset({"call-center-site"})


class Probe(StrEnum):
    """What, beyond a finished rollout, proves a workload answers."""

    NONE = "none"
    RIVA = "riva"
    VLLM = "vllm"
    TTS = "tts"
    LIVEKIT = "livekit"
    AGENT = "agent"


@dataclass(frozen=True)
class Workload:
    asset: str
    labels: tuple[str, ...]
    probe: Probe
    description: str


FOUNDATION = "namespace_and_secrets"

# Upstream first: each tier's assets depend on every asset of the tier before.
GPU_INFERENCE = (
    Workload("riva_stt", ("riva-stt",), Probe.RIVA, "NVIDIA Riva speech recognition on one L4 (gRPC 50051)"),
    Workload("vllm_llm", ("vllm",), Probe.VLLM, "vLLM serving Llama 3.1 8B Instruct on one L4 (HTTP 8000)"),
    Workload("chatterbox_tts", ("chatterbox-tts",), Probe.TTS, "Chatterbox TTS server on one L4 (HTTP 8880)"),
)
LIVEKIT = (
    Workload("redis", ("redis",), Probe.NONE, "Redis for LiveKit's room state and SIP/egress coordination"),
    Workload(
        "livekit_server",
        # webhooks: the receiver livekit-server posts its webhooks to (docs/webhooks.md)
        ("livekit-server", "stunner", "livekit-gateway", "webhooks"),
        Probe.LIVEKIT,
        "LiveKit server, its Gateway API route, the STUNner TURN relay and the webhook service",
    ),
    Workload("livekit_egress", ("livekit-egress",), Probe.NONE, "LiveKit Egress recording calls to the bucket"),
    Workload("livekit_sip", ("livekit-sip",), Probe.NONE, "LiveKit SIP behind the Twilio-facing UDP load balancer"),
)
AGENT = Workload("agent_workers", ("agent",), Probe.AGENT, "The voice agent Deployment and its HPA")
# Off the call path: needs Postgres (bootstrap) and the Gateway (livekit_server's group).
CALL_BROWSER = Workload(
    "call_browser", ("call-browser",), Probe.NONE, "The analyst call browser behind IAP on the Gateway"
)

WORKLOADS: tuple[Workload, ...] = (*GPU_INFERENCE, *LIVEKIT, AGENT, CALL_BROWSER)
WORKLOAD_BY_ASSET = {w.asset: w for w in WORKLOADS}
APPLIED_ASSETS: tuple[str, ...] = (FOUNDATION, *(w.asset for w in WORKLOADS))


def asset_for_label(label: str | None) -> str | None:
    for workload in WORKLOADS:
        if label in workload.labels:
            return workload.asset
    return None
