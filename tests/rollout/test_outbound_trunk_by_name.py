"""The outbound trunk the rollout creates is the one the agent dials, through the real livekit-server.

LiveKit gives a trunk a generated id (``ST_...``); the rollout keeps the trunk by name, and the
agent finds the id by that same name at dial time. There is no livekit-sip here, so the dial
itself cannot connect: the real server answers a dial on a trunk it holds with ``unavailable``
("no response from servers", it asked for a SIP service) and one on an id it does not hold with
``not_found``. That difference is what these tests read.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
from livekit import api

from agent.dialing import place_call
from agent.outbound_trunk import forget_outbound_trunks
from agent.settings import load_settings
from callcenter.dispatch import OutboundCallRequest
from callcenter.ids import new_call_id
from callcenter.outcomes import CallOutcome
from devstack.livekit import LocalLiveKit
from orchestration.defs.rollout.assets import outbound_trunk
from orchestration.defs.rollout.kube import KubernetesResource
from orchestration.defs.rollout.settings import RolloutSettings
from orchestration.defs.rollout.trunks import SipTrunkSettings
from orchestration.resources.livekit import LiveKitResource
from tests.rollout.kube_double import ClusterDouble

pytestmark = pytest.mark.timeout(60)

# what livekit-server v1.13 says when it found the trunk and no livekit-sip took the call
SIP_SERVICE_ASKED = "no response from servers"


@pytest.fixture(autouse=True)
def no_cached_trunks() -> None:
    forget_outbound_trunks()


def materialize_outbound_trunk(lk: LocalLiveKit, cluster: ClusterDouble, tmp_path: Path, name: str) -> dict[str, Any]:
    """The rollout's outbound_trunk asset against the real server; returns its metadata."""
    resources = {
        "sip_trunks": SipTrunkSettings(
            phone_numbers="+15550100", termination_uri="callcenter.pstn.twilio.com", outbound_trunk_name=name
        ),
        "livekit": LiveKitResource(url=lk.http_url, api_key=lk.api_key, api_secret=lk.api_secret),
        "kubernetes": KubernetesResource(
            context="kube-double", kubeconfig=str(cluster.write_kubeconfig(tmp_path / "kubeconfig"))
        ),
        "rollout_settings": RolloutSettings(),
    }
    result = dg.materialize([outbound_trunk], resources=resources, instance=dg.DagsterInstance.ephemeral())
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


async def dial(lk: LocalLiveKit, trunk_name: str):  # noqa: ANN201
    """A dial as the worker places it, with the agent's settings as deployed: a trunk name and no id."""
    settings = load_settings(sip_outbound_trunk_name=trunk_name)
    assert settings.sip_outbound_trunk_id is None
    request = OutboundCallRequest(
        call_id=new_call_id(),
        phone_number="+14155550123",
        campaign_id="plan-renewal-2026-11",
        contact_id="contact-42",
        attempt_id="attempt-42-1",
        persona="plan_renewal",
    )
    async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as lkapi:
        return await place_call(
            lkapi,
            request,
            room_name=request.call_id,
            trunk_id=settings.sip_outbound_trunk_id,
            trunk_name=settings.sip_outbound_trunk_name,
        )


async def delete_trunk(lk: LocalLiveKit, trunk_id: str) -> None:
    async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as lkapi:
        await lkapi.sip.delete_trunk(api.DeleteSIPTrunkRequest(sip_trunk_id=trunk_id))


def test_the_agent_dials_the_trunk_the_rollout_created(
    real_livekit: LocalLiveKit, cluster: ClusterDouble, seed_secrets, tmp_path: Path
) -> None:
    seed_secrets()
    name = f"twilio-outbound-{uuid.uuid4().hex[:8]}"
    created = materialize_outbound_trunk(real_livekit, cluster, tmp_path, name)
    assert created["action"] == "created" and created["id"].startswith("ST_")

    result = asyncio.run(dial(real_livekit, name))

    assert result.outcome is CallOutcome.FAILED  # no livekit-sip here to place it
    assert SIP_SERVICE_ASKED in (result.error or ""), result.error


def test_a_missing_trunk_fails_the_dial_naming_it(
    real_livekit: LocalLiveKit, cluster: ClusterDouble, seed_secrets, tmp_path: Path
) -> None:
    seed_secrets()
    name = f"twilio-outbound-{uuid.uuid4().hex[:8]}"
    materialize_outbound_trunk(real_livekit, cluster, tmp_path, name)

    result = asyncio.run(dial(real_livekit, f"{name}-renamed"))

    assert result.outcome is CallOutcome.FAILED and result.sip_status_code is None
    assert f"no outbound SIP trunk named '{name}-renamed'" in (result.error or "")
    assert "outbound_trunk" in (result.error or "")  # says which asset makes it


def test_a_trunk_made_again_is_found_again(
    real_livekit: LocalLiveKit, cluster: ClusterDouble, seed_secrets, tmp_path: Path
) -> None:
    """A person deletes the trunk and the rollout makes it again under a new id: the id the worker
    holds is refused once (a failed attempt the ledger retries), and the next dial finds the new one."""
    seed_secrets()
    name = f"twilio-outbound-{uuid.uuid4().hex[:8]}"
    first = materialize_outbound_trunk(real_livekit, cluster, tmp_path, name)
    assert SIP_SERVICE_ASKED in (asyncio.run(dial(real_livekit, name)).error or "")  # id now held by this process

    asyncio.run(delete_trunk(real_livekit, first["id"]))
    again = materialize_outbound_trunk(real_livekit, cluster, tmp_path, name)
    assert again["action"] == "created" and again["id"] != first["id"]

    stale = asyncio.run(dial(real_livekit, name))
    assert stale.outcome is CallOutcome.FAILED and "not_found" in (stale.error or ""), stale.error
    fresh = asyncio.run(dial(real_livekit, name))
    assert SIP_SERVICE_ASKED in (fresh.error or ""), fresh.error
