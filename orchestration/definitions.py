"""The Dagster code location: merges the domains (replay on the local stack only) and the deployment's resources."""

from __future__ import annotations

import dagster as dg

from orchestration.defs import dialing, postcall, replay, rollout
from orchestration.defs.webhooks import analyzed as webhooks
from orchestration.deployment import Deployment, current_deployment
from orchestration.resources import shared_resources

_deployment = current_deployment()

defs = dg.Definitions.merge(
    rollout.defs,
    dialing.defs,
    postcall.defs,
    webhooks.defs,
    *([replay.defs] if _deployment is Deployment.LOCAL else []),
    dg.Definitions(
        resources={
            **shared_resources(_deployment),
            **rollout.resources(_deployment),
            **dialing.resources(_deployment),
            **postcall.resources(_deployment),
            **replay.resources(_deployment),
        }
    ),
)
