"""LiveKit server API access (rooms, SIP, dispatch, egress) through ``livekit-api``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import dagster as dg
from livekit import api


class LiveKitNotConfigured(dg.Failure):
    pass


class LiveKitResource(dg.ConfigurableResource):
    """URL is the server's HTTP(S) URL as the cluster sees it, e.g. http://livekit-server:7880."""

    url: str = ""
    api_key: str = ""
    api_secret: str = ""

    def require_configured(self) -> None:
        missing = [
            env
            for env, value in (
                ("LIVEKIT_URL", self.url),
                ("LIVEKIT_API_KEY", self.api_key),
                ("LIVEKIT_API_SECRET", self.api_secret),
            )
            if not value
        ]
        if missing:
            raise LiveKitNotConfigured(
                description=(
                    "LiveKit is not configured for this deployment: set "
                    + ", ".join(missing)
                    + " (and CALLCENTER_DEPLOYMENT=gke on the cluster). The local stack has no LiveKit server."
                )
            )

    @asynccontextmanager
    async def client(self) -> AsyncIterator[api.LiveKitAPI]:
        self.require_configured()
        lkapi = api.LiveKitAPI(url=self.url, api_key=self.api_key, api_secret=self.api_secret)
        try:
            yield lkapi
        finally:
            await lkapi.aclose()
