"""The outbound trunk's id, found by the name the rollout keeps the trunk under.

LiveKit identifies a trunk by a generated id (``ST_...``) that exists only once the rollout
has created the trunk, so the agent is configured with the trunk's name
(``SIP_OUTBOUND_TRUNK_NAME``, by default ``callcenter.dispatch.OUTBOUND_TRUNK_NAME``, the
rollout's too) and lists the trunks when it dials. The id is kept per worker process for
a minute: a campaign's dials do not each list the trunks, and a trunk made again under a new
id is found again within the minute (at once when LiveKit refuses the id held).

With several trunks of the name (made by hand; the rollout never duplicates and reports
them), the first as LiveKit lists them is used: the one the rollout keeps up to date.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from livekit import api

TRUNK_ID_TTL_S = 60.0

# (server, trunk name) -> (trunk id, monotonic expiry); one worker process, every job it runs
_held: dict[tuple[str, str], tuple[str, float]] = {}


class OutboundTrunkMissing(LookupError):
    """No outbound trunk with the configured name exists in LiveKit."""


def _server(lkapi: api.LiveKitAPI) -> str:
    # the server's URL as livekit-api normalised it: a process talks to one server, tests to many
    return getattr(getattr(lkapi.sip, "_client", None), "host", "")


async def outbound_trunk_id(
    lkapi: api.LiveKitAPI,
    name: str,
    *,
    ttl_s: float = TRUNK_ID_TTL_S,
    clock: Callable[[], float] = time.monotonic,
) -> str:
    """The id of the outbound trunk named ``name``; raises OutboundTrunkMissing when there is none
    (never remembered: the next dial looks again) and TwirpError when LiveKit cannot list."""
    key = (_server(lkapi), name)
    held = _held.get(key)
    now = clock()
    if held is not None and held[1] > now:
        return held[0]
    listed = await lkapi.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest())
    ids = [trunk.sip_trunk_id for trunk in listed.items if trunk.name == name]
    if not ids:
        _held.pop(key, None)
        raise OutboundTrunkMissing(
            f"no outbound SIP trunk named {name!r} in LiveKit: materialize the rollout's outbound_trunk asset, "
            "or set SIP_OUTBOUND_TRUNK_NAME (or SIP_OUTBOUND_TRUNK_ID) on the agent to the trunk it should use"
        )
    _held[key] = (ids[0], now + ttl_s)
    return ids[0]


def forget_outbound_trunk(lkapi: api.LiveKitAPI, name: str, trunk_id: str) -> None:
    """LiveKit refused ``trunk_id``: the next dial lists the trunks again."""
    key = (_server(lkapi), name)
    if key in _held and _held[key][0] == trunk_id:
        del _held[key]


def forget_outbound_trunks() -> None:
    """Every held id (tests)."""
    _held.clear()
