"""The one map from deployment to resources.

Shared resources (the recordings bucket, LiveKit, the campaign catalog) live here; each domain under
``orchestration/defs`` contributes its own through ``resources(deployment)``. Switching
local <-> gke is configuration (CALLCENTER_DEPLOYMENT and the env vars below), never code.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from orchestration.deployment import Deployment
from orchestration.resources.campaigns import LOCAL_CAMPAIGNS_DIR, CampaignCatalog
from orchestration.resources.livekit import LiveKitResource
from orchestration.resources.storage import RecordingsBucket


def _env_or_empty(name: str) -> dg.EnvVar | str:
    """The variable where it is set (read at run time, never shown in config), else empty."""
    return dg.EnvVar(name) if os.environ.get(name) else ""


def shared_resources(deployment: Deployment) -> dict[str, Any]:
    match deployment:
        case Deployment.LOCAL:
            return {
                "recordings_bucket": RecordingsBucket(
                    bucket_name=dg.EnvVar("CALLCENTER_RECORDINGS_BUCKET"),
                    project="local",
                    emulator_host=dg.EnvVar("STORAGE_EMULATOR_HOST"),
                ),
                "campaign_catalog": CampaignCatalog(directory=str(LOCAL_CAMPAIGNS_DIR)),
                # The local stack's livekit-server (devstack sets LIVEKIT_*); without it, rollout
                # and dialing fail fast naming the settings.
                "livekit": LiveKitResource(
                    url=_env_or_empty("LIVEKIT_URL"),
                    api_key=_env_or_empty("LIVEKIT_API_KEY"),
                    api_secret=_env_or_empty("LIVEKIT_API_SECRET"),
                ),
            }
        case Deployment.GKE:
            return {
                "recordings_bucket": RecordingsBucket(
                    bucket_name=dg.EnvVar("CALLCENTER_RECORDINGS_BUCKET"),
                    project=dg.EnvVar("GOOGLE_CLOUD_PROJECT"),
                ),
                "campaign_catalog": CampaignCatalog(directory=dg.EnvVar("CALLCENTER_CAMPAIGNS_DIR")),
                "livekit": LiveKitResource(
                    url=dg.EnvVar("LIVEKIT_URL"),
                    api_key=dg.EnvVar("LIVEKIT_API_KEY"),
                    api_secret=dg.EnvVar("LIVEKIT_API_SECRET"),
                ),
            }
    raise ValueError(f"unknown deployment {deployment!r}")
