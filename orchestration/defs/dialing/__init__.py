"""The dialing domain. Exposes `defs` (assets, checks, jobs, schedules, sensors) and
`resources(deployment)`: the domain's own resources for that deployment."""

from __future__ import annotations

from typing import Any

import dagster as dg

from orchestration.deployment import Deployment

defs = dg.Definitions()


def resources(deployment: Deployment) -> dict[str, Any]:
    return {}
