"""The outbound call flow against the LiveKit Twirp double: dial, SIP failures → outcomes,
recording request, and the session report in the (emulated) recordings bucket."""

from __future__ import annotations

import asyncio

import pytest
from livekit import api

from agent.dialing import place_call
from agent.settings import AgentSettings
from agent.worker import connect_call, finish_call
from callcenter.outcomes import CallOutcome
from callcenter.paths import audio_path, report_path
from callcenter.report import Speaker, parse_report
from doubles.livekit_server import LiveKitDouble, sip_failure
from doubles.llm_server import Rule, Say, ScriptedLLM
from tests.agent.conftest import bucket_client, outbound_request, text_call

pytestmark = pytest.mark.timeout(60)


def outbound_trunk(double: LiveKitDouble) -> str:
    from livekit.protocol import sip

    info = double._h_SIP_CreateSIPOutboundTrunk(
        sip.CreateSIPOutboundTrunkRequest(trunk=sip.SIPOutboundTrunkInfo(name="twilio", address="example.pstn.twilio.com")),
        {},
    )
    return info.sip_trunk_id


def read_report(gcs_emulator: str, bucket: str, call_id: str, started_at):
    blob = bucket_client(gcs_emulator).bucket(bucket).blob(report_path(call_id))
    return parse_report(blob.download_as_bytes())


async def test_answered_call_dials_greets_records_and_reports(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble, gcs_emulator: str
) -> None:
    scripted_llm.script([Rule(r"hello", Say("I'm calling because your plan ends soon."))])
    settings = agent_settings.model_copy(update={"sip_outbound_trunk_id": outbound_trunk(livekit_double)})
    request = outbound_request(caller_id="+14155550000", ring_timeout_s=25)
    async with text_call(settings, livekit_double, request) as tc:
        assert await connect_call(tc.call, tc.agent, tc.lkapi, settings) is True
        await tc.session.run(user_input="Hello?")

        [dial] = livekit_double.calls("SIP", "CreateSIPParticipant")
        sent = dial.message
        assert (sent.room_name, sent.sip_call_to, sent.sip_number) == (request.call_id, "+14155550123", "+14155550000")
        assert sent.sip_trunk_id == settings.sip_outbound_trunk_id
        assert sent.wait_until_answered is True
        assert sent.ringing_timeout.seconds == 25
        assert sent.participant_identity == "callee-attempt-42-1"
        assert sent.participant_attributes["callcenter.campaign_id"] == "plan-renewal-2026-11"
        assert dial.claims["sip"]["call"] is True

        [egress] = livekit_double.calls("Egress", "StartRoomCompositeEgress")
        rec = egress.message
        assert rec.room_name == request.call_id and rec.audio_only is True
        assert rec.audio_mixing == api.AudioMixing.DUAL_CHANNEL_AGENT
        [out] = rec.file_outputs
        assert out.file_type == api.EncodedFileType.OGG
        assert out.filepath == audio_path(request.call_id)
        assert out.gcp.bucket == settings.recordings_bucket and out.gcp.credentials == ""  # Workload Identity
        assert egress.claims["video"]["roomRecord"] is True

        report = await finish_call(tc.call, tc.session.history, tc.lkapi, settings)

    assert livekit_double.calls("Egress", "StopEgress")  # finalised before the report
    stored = read_report(gcs_emulator, settings.recordings_bucket, request.call_id, tc.call.started_at)
    assert stored == report
    assert stored.outcome is CallOutcome.ANSWERED and stored.sip_status_code == 200
    assert (stored.campaign_id, stored.contact_id, stored.attempt_id) == (
        "plan-renewal-2026-11",
        "contact-42",
        "attempt-42-1",
    )
    assert stored.recording_path == out.filepath
    assert stored.automated_agent_disclosed and stored.recording_disclosed
    assert stored.answered_at is not None and stored.agent_first_spoke_at >= stored.answered_at
    assert [t.speaker for t in stored.turns] == [Speaker.AGENT, Speaker.CALLER, Speaker.AGENT]
    assert stored.turns[-1].text == "I'm calling because your plan ends soon."
    assert [lat.turn_index for lat in stored.latency] == [2]
    assert stored.latency[0].llm_ttft_ms is not None and stored.latency[0].llm_ttft_ms > 0


@pytest.mark.parametrize(
    ("status", "reason", "outcome"),
    [
        (486, "Busy Here", CallOutcome.BUSY),
        (480, "Temporarily Unavailable", CallOutcome.NO_ANSWER),
        (408, "Request Timeout", CallOutcome.NO_ANSWER),
        (404, "Not Found", CallOutcome.WRONG_NUMBER),
        (484, "Address Incomplete", CallOutcome.WRONG_NUMBER),
        (603, "Decline", CallOutcome.DECLINED),
        (503, "Service Unavailable", CallOutcome.FAILED),
    ],
)
async def test_sip_failures_map_to_outcomes_and_still_report(
    status: int,
    reason: str,
    outcome: CallOutcome,
    agent_settings: AgentSettings,
    scripted_llm: ScriptedLLM,
    livekit_double: LiveKitDouble,
    gcs_emulator: str,
) -> None:
    scripted_llm.script([])
    settings = agent_settings.model_copy(update={"sip_outbound_trunk_id": outbound_trunk(livekit_double)})
    request = outbound_request(phone_number="+14155550188")
    livekit_double.sip_outcomes["+14155550188"] = sip_failure(status, reason)
    async with text_call(settings, livekit_double, request) as tc:
        assert await connect_call(tc.call, tc.agent, tc.lkapi, settings) is False
        await finish_call(tc.call, tc.session.history, tc.lkapi, settings)
        assert tc.session.history.items == [] or all(m.type != "message" for m in tc.session.history.items)

    assert livekit_double.calls("Egress", "StartRoomCompositeEgress") == []  # nothing to record
    stored = read_report(gcs_emulator, settings.recordings_bucket, request.call_id, tc.call.started_at)
    assert stored.outcome is outcome
    assert stored.sip_status_code == status
    assert stored.answered_at is None and stored.recording_path is None and stored.turns == []


async def test_dial_without_any_trunk_fails_loudly(livekit_double: LiveKitDouble) -> None:
    async with api.LiveKitAPI(livekit_double.url, livekit_double.api_key, livekit_double.api_secret) as lkapi:
        with pytest.raises(RuntimeError, match="SIP_OUTBOUND_TRUNK_ID"):
            await place_call(lkapi, outbound_request(), room_name="call-x", trunk_id=None)
    assert livekit_double.requests == []


async def test_a_recording_that_fails_is_not_referenced_by_the_report(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble, gcs_emulator: str
) -> None:
    from livekit.protocol import egress

    def failed_stop(req: egress.StopEgressRequest, _claims: dict) -> egress.EgressInfo:
        info = livekit_double.egresses[req.egress_id]
        info.status = egress.EGRESS_FAILED
        return info

    livekit_double.on("Egress", "StopEgress", failed_stop)
    scripted_llm.script([])
    settings = agent_settings.model_copy(update={"sip_outbound_trunk_id": outbound_trunk(livekit_double)})
    request = outbound_request()
    async with text_call(settings, livekit_double, request) as tc:
        assert await connect_call(tc.call, tc.agent, tc.lkapi, settings)
        report = await asyncio.wait_for(finish_call(tc.call, tc.session.history, tc.lkapi, settings), 20)
    assert report.recording_path is None
    assert report.outcome is CallOutcome.ANSWERED


async def test_inbound_call_records_only_after_the_recording_notice_was_spoken(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    from livekit.protocol import egress

    scripted_llm.script([])
    heard_before_recording: list[list[str]] = []
    history_ref: list = []

    def start_egress(req: egress.RoomCompositeEgressRequest, _claims: dict) -> egress.EgressInfo:
        # what the caller had heard when Egress was asked to start
        heard_before_recording.append(
            [m.text_content for m in history_ref[0].items if m.type == "message" and m.role == "assistant"]
        )
        return livekit_double._start_egress(req.room_name)

    livekit_double.on("Egress", "StartRoomCompositeEgress", start_egress)
    async with text_call(agent_settings, livekit_double) as tc:
        history_ref.append(tc.session.history)
        assert await connect_call(tc.call, tc.agent, tc.lkapi, agent_settings) is True
    [heard] = heard_before_recording
    assert len(heard) == 1 and "This call is recorded" in heard[0]
    assert tc.call.sip_status_code == 200 and tc.call.recording_path is not None
    assert livekit_double.calls("SIP", "CreateSIPParticipant") == []  # inbound: nothing to dial


async def test_a_dispatch_past_its_deadline_is_not_dialled(
    agent_settings: AgentSettings,
    scripted_llm: ScriptedLLM,
    livekit_double: LiveKitDouble,
    gcs_emulator: str,
) -> None:
    """It waited for a free worker past the calling window's end: the phone must not ring, and
    the report says the attempt failed, so the ledger retries it inside the window."""
    from datetime import UTC, datetime, timedelta

    scripted_llm.script([])
    settings = agent_settings.model_copy(update={"sip_outbound_trunk_id": outbound_trunk(livekit_double)})
    request = outbound_request(dial_by=datetime.now(UTC) - timedelta(seconds=1))
    async with text_call(settings, livekit_double, request) as tc:
        assert await connect_call(tc.call, tc.agent, tc.lkapi, settings) is False
        await finish_call(tc.call, tc.session.history, tc.lkapi, settings)
    assert livekit_double.calls("SIP", "CreateSIPParticipant") == []
    stored = read_report(gcs_emulator, settings.recordings_bucket, request.call_id, tc.call.started_at)
    assert stored.outcome is CallOutcome.FAILED and stored.answered_at is None
