"""The LiveKit double must behave like livekit-server towards the real livekit-api client."""

from __future__ import annotations

import pytest
from livekit import api
from livekit.protocol import sip

from doubles.livekit_server import LiveKitDouble, sip_failure


async def test_creates_and_lists_trunks_with_admin_grant(livekit_double: LiveKitDouble) -> None:
    async with api.LiveKitAPI(livekit_double.url, livekit_double.api_key, livekit_double.api_secret) as lk:
        created = await lk.sip.create_inbound_trunk(
            sip.CreateSIPInboundTrunkRequest(trunk=sip.SIPInboundTrunkInfo(name="twilio-inbound", numbers=["+15550100"]))
        )
        listed = await lk.sip.list_inbound_trunk(sip.ListSIPInboundTrunkRequest())
    assert created.sip_trunk_id.startswith("ST_")
    assert [t.name for t in listed.items] == ["twilio-inbound"]
    assert livekit_double.calls("SIP", "CreateSIPInboundTrunk")[0].claims["sip"]["admin"] is True


async def test_rejects_a_token_signed_with_the_wrong_secret(livekit_double: LiveKitDouble) -> None:
    async with api.LiveKitAPI(livekit_double.url, livekit_double.api_key, "wrong-secret-wrong-secret-wrong-secret!!") as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.room.list_rooms(api.ListRoomsRequest())
    assert err.value.code == "unauthenticated"
    assert livekit_double.requests == []


async def test_sip_failure_reaches_the_client_with_its_status(livekit_double: LiveKitDouble) -> None:
    livekit_double.sip_outcomes["+15550199"] = sip_failure(486, "Busy Here")
    async with api.LiveKitAPI(livekit_double.url, livekit_double.api_key, livekit_double.api_secret) as lk:
        with pytest.raises(api.TwirpError) as err:
            await lk.sip.create_sip_participant(
                api.CreateSIPParticipantRequest(room_name="call-x", sip_call_to="+15550199", wait_until_answered=True)
            )
    assert err.value.metadata["sip_status_code"] == "486"
