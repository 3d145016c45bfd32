"""The Twilio SIP trunks and the inbound dispatch rule, kept in LiveKit by name.

LiveKit identifies trunks by generated ids, so "create" run twice makes two trunks. We
list, match by name, and update the one we find (or create it when none exists): a trunk
is never duplicated and a re-run with no change sends no write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg
from google.protobuf.message import Message
from livekit import api

from callcenter.dispatch import AGENT_NAME, OUTBOUND_TRUNK_NAME

# Twilio's Elastic SIP Trunking signalling ranges (all edges); only these may send INVITEs.
TWILIO_SIGNALLING_RANGES = (
    "54.172.60.0/30",
    "54.244.51.0/30",
    "54.171.127.192/30",
    "35.156.191.128/30",
    "54.65.63.192/30",
    "54.169.127.128/30",
    "54.252.254.64/30",
    "177.71.206.192/30",
)

_SERVER_FIELDS = ("sip_trunk_id", "sip_dispatch_rule_id", "created_at", "updated_at")


class SipTrunkSettings(dg.ConfigurableResource):
    """What the trunks should be. Credentials are read from a Kubernetes Secret, never config;
    the local stack, which has no cluster, gives them in ``CALLCENTER_SIP_TRUNK_USERNAME`` and
    ``CALLCENTER_SIP_TRUNK_PASSWORD`` (``credentials_from_env``)."""

    phone_numbers: str = ""  # comma-separated E.164 numbers on the Twilio trunk
    inbound_trunk_name: str = "twilio-inbound"
    allowed_addresses: str = ",".join(TWILIO_SIGNALLING_RANGES)
    outbound_trunk_name: str = OUTBOUND_TRUNK_NAME  # the agent finds the trunk by it (SIP_OUTBOUND_TRUNK_NAME)
    termination_uri: str = ""  # e.g. callcenter.pstn.twilio.com (Twilio trunk's Termination SIP URI)
    credentials_secret: str = "twilio-sip"  # keys: username, password
    credentials_from_env: bool = False  # local stack only: the two variables above, not the Secret
    dispatch_rule_name: str = "inbound-calls"
    room_prefix: str = "call-"
    agent_name: str = AGENT_NAME  # the worker's explicit-dispatch name

    def numbers(self) -> list[str]:
        return [n.strip() for n in self.phone_numbers.split(",") if n.strip()]

    def addresses(self) -> list[str]:
        return [a.strip() for a in self.allowed_addresses.split(",") if a.strip()]

    def require(self, *fields: str) -> None:
        env = {
            "phone_numbers": "CALLCENTER_SIP_NUMBERS",
            "termination_uri": "CALLCENTER_TWILIO_TERMINATION_URI",
        }
        missing = [env.get(f, f) for f in fields if not getattr(self, f)]
        if missing:
            raise dg.Failure(description="SIP trunk settings missing: set " + ", ".join(missing))


@dataclass
class TrunkOutcome:
    name: str
    action: str  # created | updated | unchanged
    id: str
    duplicates: list[str]


def _without_server_fields(msg: Message) -> Message:
    copy = type(msg)()
    copy.CopyFrom(msg)
    for name in _SERVER_FIELDS:
        if name in copy.DESCRIPTOR.fields_by_name:
            copy.ClearField(name)
    return copy


def _same(desired: Message, live: Message) -> bool:
    return _without_server_fields(desired) == _without_server_fields(live)


def desired_inbound(settings: SipTrunkSettings) -> api.SIPInboundTrunkInfo:
    return api.SIPInboundTrunkInfo(
        name=settings.inbound_trunk_name,
        numbers=settings.numbers(),
        allowed_addresses=settings.addresses(),
    )


def desired_outbound(settings: SipTrunkSettings, username: str, password: str) -> api.SIPOutboundTrunkInfo:
    return api.SIPOutboundTrunkInfo(
        name=settings.outbound_trunk_name,
        address=settings.termination_uri,
        numbers=settings.numbers(),
        transport=api.SIPTransport.SIP_TRANSPORT_AUTO,
        auth_username=username,
        auth_password=password,
    )


def desired_dispatch_rule(settings: SipTrunkSettings, inbound_trunk_id: str) -> api.SIPDispatchRuleInfo:
    # One room per call, and the agent explicitly dispatched into it by name (the worker
    # registers with agent_name, so it is never auto-dispatched to arbitrary rooms).
    return api.SIPDispatchRuleInfo(
        name=settings.dispatch_rule_name,
        rule=api.SIPDispatchRule(
            dispatch_rule_individual=api.SIPDispatchRuleIndividual(room_prefix=settings.room_prefix)
        ),
        trunk_ids=[inbound_trunk_id],
        room_config=api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=settings.agent_name)]),
    )


async def _sync_by_name(
    desired: Any,
    listed: Any,
    id_field: str,
    create: Callable[[], Awaitable[Any]],
    update: Callable[[str], Awaitable[Any]],
) -> TrunkOutcome:
    """List, compare, update or create by name; never a duplicate (extras are reported, not deleted)."""
    found = [item for item in listed.items if item.name == desired.name]
    if not found:
        created = await create()
        return TrunkOutcome(desired.name, "created", getattr(created, id_field), [])
    live_id, extra = getattr(found[0], id_field), [getattr(item, id_field) for item in found[1:]]
    if _same(desired, found[0]):
        return TrunkOutcome(desired.name, "unchanged", live_id, extra)
    await update(live_id)
    return TrunkOutcome(desired.name, "updated", live_id, extra)


async def sync_inbound_trunk(lk: api.LiveKitAPI, desired: api.SIPInboundTrunkInfo) -> TrunkOutcome:
    return await _sync_by_name(
        desired,
        await lk.sip.list_inbound_trunk(api.ListSIPInboundTrunkRequest()),
        "sip_trunk_id",
        create=lambda: lk.sip.create_inbound_trunk(api.CreateSIPInboundTrunkRequest(trunk=desired)),
        update=lambda trunk_id: lk.sip.update_inbound_trunk(trunk_id, desired),
    )


async def sync_outbound_trunk(lk: api.LiveKitAPI, desired: api.SIPOutboundTrunkInfo) -> TrunkOutcome:
    return await _sync_by_name(
        desired,
        await lk.sip.list_outbound_trunk(api.ListSIPOutboundTrunkRequest()),
        "sip_trunk_id",
        create=lambda: lk.sip.create_outbound_trunk(api.CreateSIPOutboundTrunkRequest(trunk=desired)),
        update=lambda trunk_id: lk.sip.update_outbound_trunk(trunk_id, desired),
    )


async def sync_dispatch_rule(lk: api.LiveKitAPI, desired: api.SIPDispatchRuleInfo) -> TrunkOutcome:
    return await _sync_by_name(
        desired,
        await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest()),
        "sip_dispatch_rule_id",
        create=lambda: lk.sip.create_dispatch_rule(api.CreateSIPDispatchRuleRequest(dispatch_rule=desired)),
        update=lambda rule_id: lk.sip.update_dispatch_rule(rule_id, desired),
    )
