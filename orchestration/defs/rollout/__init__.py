"""The rollout domain. Exposes `defs` (assets, checks, jobs) and `resources(deployment)`:
the domain's own resources for that deployment.

Operators materialize the ``rollout`` job from the Dagster UI; ``rollout_drift`` runs the
drift checks alone (nothing applied) to compare the live cluster with the manifests.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from orchestration.defs.rollout.assets import ALL_ASSETS, GROUP, TRUNKS
from orchestration.defs.rollout.checks import ALL_CHECKS, DRIFT_CHECKS
from orchestration.defs.rollout.kube import CONTEXT_ENV, KubernetesResource
from orchestration.defs.rollout.probes import InferenceEndpoints
from orchestration.defs.rollout.settings import RolloutSettings
from orchestration.defs.rollout.trunks import SipTrunkSettings
from orchestration.deployment import Deployment

RUN_TAGS = {"callcenter/domain": "rollout"}

rollout_job = dg.define_asset_job(
    "rollout",
    selection=dg.AssetSelection.groups(GROUP),
    tags=RUN_TAGS,
    description="Apply the rendered manifests tier by tier; each tier's health gate must pass before the next.",
)
rollout_drift_job = dg.define_asset_job(
    "rollout_drift",
    selection=dg.AssetSelection.checks(*DRIFT_CHECKS),
    tags=RUN_TAGS,
    description="Compare the live cluster with the rendered manifests; applies nothing.",
)

sip_trunks_job = dg.define_asset_job(
    "sip_trunks",
    selection=dg.AssetSelection.assets(*TRUNKS),
    tags=RUN_TAGS,
    description="The rollout's LiveKit part alone: inbound and outbound trunks and the dispatch rule. "
    "On the local stack this is the part that runs (against its livekit-server); the Kubernetes "
    "assets need a cluster (CALLCENTER_KUBE_CONTEXT).",
)

defs = dg.Definitions(
    assets=ALL_ASSETS, asset_checks=ALL_CHECKS, jobs=[rollout_job, rollout_drift_job, sip_trunks_job]
)


def resources(deployment: Deployment) -> dict[str, Any]:
    match deployment:
        case Deployment.LOCAL:
            return {
                # The local stack's kube-apiserver (devstack/control_plane.py sets the context and
                # KUBECONFIG): the dev overlay is applied to a real API server, though no kubelet
                # runs its workloads. Without it the assets fail fast naming CALLCENTER_KUBE_CONTEXT.
                "kubernetes": KubernetesResource(context=dg.EnvVar(CONTEXT_ENV), kubeconfig=dg.EnvVar("KUBECONFIG"))
                if os.environ.get(CONTEXT_ENV) and os.environ.get("KUBECONFIG")
                else KubernetesResource(),
                # no kubelet on the local API server: a health gate fails in 2 minutes, not 15
                "rollout_settings": RolloutSettings(overlay="dev", rollout_timeout_s=120.0),
                "inference_endpoints": InferenceEndpoints(),
                # the trunks and the dispatch rule go to the local stack's livekit-server; the
                # carrier end is the local phone line (devstack/phone_line.py)
                "sip_trunks": SipTrunkSettings(
                    phone_numbers=os.environ.get("CALLCENTER_LOCAL_PHONE_NUMBER", "+14155550100"),
                    termination_uri="127.0.0.1:5060",
                    allowed_addresses="127.0.0.1/32",
                    credentials_from_env=True,
                ),
            }
        case Deployment.GKE:
            return {
                "kubernetes": KubernetesResource(context=dg.EnvVar(CONTEXT_ENV)),
                "rollout_settings": RolloutSettings(overlay="gke"),
                "inference_endpoints": InferenceEndpoints(),
                "sip_trunks": SipTrunkSettings(
                    phone_numbers=dg.EnvVar("CALLCENTER_SIP_NUMBERS"),
                    termination_uri=dg.EnvVar("CALLCENTER_TWILIO_TERMINATION_URI"),
                ),
            }
    raise ValueError(f"unknown deployment {deployment!r}")
