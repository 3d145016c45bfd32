"""The session report is written whatever goes wrong at hang-up, and says only what happened."""

from __future__ import annotations

import asyncio
import json

import pytest
from pydantic import ValidationError

from agent.call_state import utcnow
from agent.session_report import build_report
from agent.worker import connect_call, finish_call
from agent.worker import outbound_request as dispatch_of
from callcenter.paths import report_path
from callcenter.report import Speaker, Turn
from doubles.livekit_server import TwirpFailure
from doubles.llm_server import CallTool, Rule
from tests.agent.conftest import bucket_client, outbound_request, text_call
from tests.agent.test_outbound_dial import outbound_trunk


async def test_an_egress_error_at_hang_up_still_writes_the_report(
    agent_settings, scripted_llm, livekit_double, gcs_emulator
) -> None:
    """Before: a ListEgress 503 escaped finish_call and no session.json was written, so a
    caller who had asked not to be called was dialled again."""
    scripted_llm.script([])

    def unavailable(_req, _claims):
        raise TwirpFailure("unavailable", "egress service unavailable", 503)

    livekit_double.on("Egress", "ListEgress", unavailable)
    settings = agent_settings.model_copy(update={"sip_outbound_trunk_id": outbound_trunk(livekit_double)})
    request = outbound_request()
    async with text_call(settings, livekit_double, request) as tc:
        assert await connect_call(tc.call, tc.agent, tc.lkapi, settings)
        tc.call.do_not_call_requested = True  # as record_do_not_call sets it
        hung_up = utcnow()
        report = await finish_call(tc.call, tc.session.history, tc.lkapi, settings, ended_at=hung_up)
    blob = (
        bucket_client(gcs_emulator)
        .bucket(settings.recordings_bucket)
        .blob(report_path(request.call_id))
    )
    stored = json.loads(blob.download_as_bytes())
    assert stored["do_not_call_requested"] is True
    assert stored["recording_path"] is None  # the file could not be confirmed: not pointed at
    assert report.ended_at == hung_up  # the hang-up, not the end of the wait for Egress


async def test_disclosures_count_only_once_heard(agent_settings, scripted_llm, livekit_double) -> None:
    scripted_llm.script([])
    async with text_call(agent_settings, livekit_double) as tc:
        handle = tc.agent.greet()
        assert not tc.call.automated_agent_disclosed  # queued is not heard
        handle.interrupt(force=True)  # the caller hung up mid-greeting
        await asyncio.sleep(0.2)
        assert handle.interrupted
        assert not tc.call.automated_agent_disclosed and not tc.call.recording_disclosed


async def test_a_do_not_call_request_is_recorded_when_the_caller_hangs_up_first(
    agent_settings, scripted_llm, livekit_double
) -> None:
    """The caller says it and hangs up before the model's tool call lands: the words decide."""
    scripted_llm.script([Rule(r"stop calling", CallTool("record_do_not_call"))])
    scripted_llm.first_token_delay_s = 1.0  # a loaded vLLM
    try:
        async with text_call(agent_settings, livekit_double) as tc:
            run = asyncio.ensure_future(tc.session.run(user_input="Stop calling me."))
            await asyncio.sleep(0.3)
            await tc.session.aclose()  # close_on_disconnect after the caller's BYE
            await asyncio.gather(run, return_exceptions=True)
            report = build_report(tc.call, tc.session.history, ended_at=utcnow(), agent_name="a")
    finally:
        scripted_llm.first_token_delay_s = 0.0
    assert not tc.call.do_not_call_requested  # the tool never ran...
    assert report.do_not_call_requested  # ...and the report still says so


@pytest.mark.parametrize(
    ("text", "asked"),
    [
        ("Please stop calling me.", True),
        ("Take me off your list", True),
        ("put me on your do-not-call list", True),
        ("don't call this number again", True),
        ("Yes, Thursday works. Call me if anything changes.", False),
        ("I will stop by the office later", False),
    ],
)
def test_do_not_call_words(text: str, asked: bool) -> None:
    from agent.session_report import asked_not_to_be_called

    assert asked_not_to_be_called([Turn(speaker=Speaker.CALLER, text=text, start=0.0, end=1.0)]) is asked
    # The agent saying it (reading a script) is not a request.
    assert not asked_not_to_be_called([Turn(speaker=Speaker.AGENT, text=text, start=0.0, end=1.0)])


def test_invalid_dispatch_metadata_is_logged_without_its_values() -> None:
    from agent.worker import metadata_problems

    raw = outbound_request(contact_fields={"policy": "PN-998877"}).model_dump(mode="json")
    raw["phone_number"] = "415 555 0123"
    raw["contact_fields"]["note"] = "x" * 600

    class Ctx:
        class job:  # noqa: N801
            metadata = json.dumps(raw)

        class room:  # noqa: N801
            name = raw["call_id"]

    with pytest.raises(ValidationError) as err:
        dispatch_of(Ctx)
    assert "415 555 0123" in str(err.value)  # pydantic's own message carries the values
    logged = " ".join(metadata_problems(err.value))
    assert "phone_number" in logged and "contact_fields" in logged
    assert "415 555 0123" not in logged and "PN-998877" not in logged


async def test_a_failed_hang_up_removes_the_caller_and_still_ends_the_job(
    agent_settings, scripted_llm, livekit_double
) -> None:
    """Before: a DeleteRoom error left the agent silent on the line, job running, no report."""
    from livekit.protocol import room as room_pb

    scripted_llm.script([])

    def unavailable(_req, _claims):
        raise TwirpFailure("unavailable", "room service unavailable", 503)

    livekit_double.on("RoomService", "DeleteRoom", unavailable)
    livekit_double.on("RoomService", "RemoveParticipant", lambda _req, _claims: room_pb.RemoveParticipantResponse())
    async with text_call(agent_settings, livekit_double, outbound_request()) as tc:
        control = tc.call.control
        control.caller_identity = "sip-callee"
        await control.hang_up()
        assert control.finished.is_set()
    (removed,) = livekit_double.calls("RoomService", "RemoveParticipant")
    assert removed.message.identity == "sip-callee"
