"""Which deployment this code location runs in: ``local`` (embedded defaults) or ``gke``.

Read once, when definitions are built; everything else takes configuration from resources.
"""

from __future__ import annotations

import os
from enum import StrEnum

DEPLOYMENT_ENV = "CALLCENTER_DEPLOYMENT"


class Deployment(StrEnum):
    LOCAL = "local"
    GKE = "gke"


def current_deployment() -> Deployment:
    raw = os.environ.get(DEPLOYMENT_ENV, Deployment.LOCAL.value)
    try:
        return Deployment(raw)
    except ValueError:
        allowed = ", ".join(d.value for d in Deployment)
        raise ValueError(f"{DEPLOYMENT_ENV}={raw!r} is not a deployment; set it to one of: {allowed}") from None
