"""The replay domain: recorded calls played again through the agent with other settings, and
compared with the originals (the regression suite for agent changes; docs/replay.md).

Exposes ``defs`` and ``resources(deployment)``. The local stack only, for now: the gke code
location leaves it out (docs/replay.md says what a cluster version needs).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from orchestration.defs.replay.assets import call_replays, replay_job
from orchestration.defs.replay.resources import ReplayAgent
from orchestration.deployment import Deployment

defs = dg.Definitions(assets=[call_replays], jobs=[replay_job])

# the local stack's engines as the agent worker reads them (devstack/__main__.py's agent_env);
# the endpoints come through the CALLCENTER_* names the code location already has
LOCAL_WORKER_ENV = {
    "STT_PROVIDER": "openai",
    "TTS_MODEL": "piper",
    "TTS_VOICE": "joe",
    "RECORDER": "local",  # Egress cannot be built here: agent/local_recorder.py stands in
    # calls are placed one at a time; the headroom is for a finished call's job still writing its
    # report when the next room is dispatched (a worker at full load turns the dispatch away,
    # and LiveKit does not offer a refused room's job again)
    "WORKER_MAX_CALLS": "4",
}


def resources(deployment: Deployment) -> dict[str, Any]:
    match deployment:
        case Deployment.LOCAL:
            return {
                "replay_agent": ReplayAgent(
                    scratch_bucket="call-center-replays-local",
                    project="local",
                    emulator_host=dg.EnvVar("STORAGE_EMULATOR_HOST"),
                    worker_env=LOCAL_WORKER_ENV,
                ),
            }
        case Deployment.GKE:
            # Not on a cluster yet: the code location's image carries neither the agent nor the
            # phone-line stand-in (docs/replay.md, "On GKE"), so the gke code location leaves the
            # replay domain out (orchestration/definitions.py) and reads none of its settings.
            return {}
    raise ValueError(f"unknown deployment {deployment!r}")
