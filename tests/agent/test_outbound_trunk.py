"""The worker dials the outbound trunk by the rollout's name for it (LiveKit Twirp double): the
connect_call call site, the per-process id, and a missing trunk as a failed attempt. The same
lookup against the real livekit-server: tests/rollout/test_outbound_trunk_by_name.py."""

from __future__ import annotations

import pytest
from livekit import api
from livekit.protocol import sip

from agent.dialing import place_call
from agent.outbound_trunk import TRUNK_ID_TTL_S, forget_outbound_trunks, outbound_trunk_id
from agent.settings import AgentSettings
from agent.worker import connect_call, finish_call
from callcenter.dispatch import OUTBOUND_TRUNK_NAME
from callcenter.outcomes import CallOutcome
from callcenter.paths import report_path
from callcenter.report import parse_report
from doubles.livekit_server import LiveKitDouble, TwirpFailure
from doubles.llm_server import ScriptedLLM
from orchestration.defs.rollout.trunks import SipTrunkSettings
from tests.agent.conftest import bucket_client, outbound_request, text_call

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def no_held_trunks() -> None:
    forget_outbound_trunks()


def add_trunk(double: LiveKitDouble, name: str) -> str:
    info = double._h_SIP_CreateSIPOutboundTrunk(
        sip.CreateSIPOutboundTrunkRequest(trunk=sip.SIPOutboundTrunkInfo(name=name, address="example.pstn.twilio.com")),
        {},
    )
    return info.sip_trunk_id


def test_the_agent_and_the_rollout_name_the_trunk_alike() -> None:
    assert AgentSettings().sip_outbound_trunk_name == SipTrunkSettings().outbound_trunk_name == OUTBOUND_TRUNK_NAME
    assert AgentSettings().sip_outbound_trunk_id is None


async def test_the_worker_dials_the_trunk_found_by_name(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([])
    add_trunk(livekit_double, "someone-elses")
    trunk_id = add_trunk(livekit_double, OUTBOUND_TRUNK_NAME)
    request = outbound_request()
    async with text_call(agent_settings, livekit_double, request) as tc:
        assert await connect_call(tc.call, tc.agent, tc.lkapi, agent_settings) is True
    [dial] = livekit_double.calls("SIP", "CreateSIPParticipant")
    assert dial.message.sip_trunk_id == trunk_id


async def test_an_explicit_trunk_id_is_dialled_without_a_lookup(livekit_double: LiveKitDouble) -> None:
    trunk_id = add_trunk(livekit_double, "hand-made")
    async with api.LiveKitAPI(livekit_double.url, livekit_double.api_key, livekit_double.api_secret) as lkapi:
        result = await place_call(
            lkapi, outbound_request(), room_name="call-x", trunk_id=trunk_id, trunk_name=OUTBOUND_TRUNK_NAME
        )
    assert result.answered
    assert livekit_double.calls("SIP", "ListSIPOutboundTrunk") == []
    assert livekit_double.calls("SIP", "CreateSIPParticipant")[0].message.sip_trunk_id == trunk_id


async def test_a_missing_trunk_is_a_failed_attempt_with_a_report(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble, gcs_emulator: str
) -> None:
    """Nothing is dialled, the job does not crash, and the report says failed: the ledger retries."""
    scripted_llm.script([])
    add_trunk(livekit_double, "twilio-outbound-old")
    request = outbound_request()
    async with text_call(agent_settings, livekit_double, request) as tc:
        assert await connect_call(tc.call, tc.agent, tc.lkapi, agent_settings) is False
        await finish_call(tc.call, tc.session.history, tc.lkapi, agent_settings)
    assert livekit_double.calls("SIP", "CreateSIPParticipant") == []
    blob = (
        bucket_client(gcs_emulator)
        .bucket(agent_settings.recordings_bucket)
        .blob(report_path(request.call_id))
    )
    stored = parse_report(blob.download_as_bytes())
    assert stored.outcome is CallOutcome.FAILED and stored.sip_status_code is None


async def test_a_trunk_list_refused_is_a_failed_attempt(livekit_double: LiveKitDouble) -> None:
    def unavailable(_req: sip.ListSIPOutboundTrunkRequest, _claims: dict) -> sip.ListSIPOutboundTrunkResponse:
        raise TwirpFailure("unavailable", "redis is down", 503)

    livekit_double.on("SIP", "ListSIPOutboundTrunk", unavailable)
    async with api.LiveKitAPI(livekit_double.url, livekit_double.api_key, livekit_double.api_secret) as lkapi:
        result = await place_call(lkapi, outbound_request(), room_name="call-x", trunk_name=OUTBOUND_TRUNK_NAME)
    assert result.outcome is CallOutcome.FAILED
    assert "did not list the outbound trunks" in (result.error or "")
    assert livekit_double.calls("SIP", "CreateSIPParticipant") == []


async def test_the_id_is_held_for_a_minute_per_process(livekit_double: LiveKitDouble) -> None:
    first = add_trunk(livekit_double, OUTBOUND_TRUNK_NAME)
    now = [1000.0]
    async with api.LiveKitAPI(livekit_double.url, livekit_double.api_key, livekit_double.api_secret) as lkapi:
        assert await outbound_trunk_id(lkapi, OUTBOUND_TRUNK_NAME, clock=lambda: now[0]) == first
        livekit_double.outbound_trunks.clear()
        second = add_trunk(livekit_double, OUTBOUND_TRUNK_NAME)
        now[0] += TRUNK_ID_TTL_S - 1
        assert await outbound_trunk_id(lkapi, OUTBOUND_TRUNK_NAME, clock=lambda: now[0]) == first
        now[0] += 2
        assert await outbound_trunk_id(lkapi, OUTBOUND_TRUNK_NAME, clock=lambda: now[0]) == second
    assert len(livekit_double.calls("SIP", "ListSIPOutboundTrunk")) == 2
