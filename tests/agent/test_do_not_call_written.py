"""A do-not-call request is written to the bucket the moment it is heard, not with the report at
the end of the call: an agent that crashes (or a report upload that fails) after the caller
said it cannot lose it. Heard by the model's tool, or by the backstop on the caller's words."""

from __future__ import annotations

import asyncio

import pytest
from livekit.agents.voice.events import UserInputTranscribedEvent

from agent.settings import AgentSettings
from agent.worker import watch_do_not_call
from callcenter.bucket import Recordings
from callcenter.do_not_call import DoNotCallRequest, HeardBy
from callcenter.outcomes import CallDirection
from callcenter.paths import do_not_call_path, report_path
from doubles.livekit_server import LiveKitDouble
from doubles.llm_server import CallTool, Rule, Say, ScriptedLLM
from tests.agent.conftest import outbound_request, text_call

pytestmark = pytest.mark.timeout(60)


async def _written(settings: AgentSettings, call_id: str, within_s: float = 10.0) -> DoNotCallRequest | None:
    bucket = Recordings(settings.recordings_bucket, "local", settings.storage_emulator_host)
    for _ in range(int(within_s / 0.1)):
        raw = await asyncio.to_thread(bucket.read_if_present, do_not_call_path(call_id))
        if raw is not None:
            return DoNotCallRequest.model_validate_json(raw)
        await asyncio.sleep(0.1)
    return None


async def test_the_tools_request_is_in_the_bucket_before_any_report(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([Rule(r"stop calling", CallTool("record_do_not_call"))])
    request = outbound_request()
    async with text_call(agent_settings, livekit_double, request) as tc:
        watch_do_not_call(tc.call, tc.session, agent_settings)
        await tc.session.run(user_input="Stop calling me. I'm not interested.")
        written = await _written(agent_settings, request.call_id)
        assert written is not None and written.heard_by is HeardBy.AGENT_TOOL
        assert written.direction is CallDirection.OUTBOUND and written.from_number is None  # the ledger has it
        bucket = Recordings(agent_settings.recordings_bucket, "local", agent_settings.storage_emulator_host)
        assert not bucket.exists(report_path(request.call_id))  # the call has not even ended


async def test_the_callers_words_are_written_when_the_model_misses_them(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([Rule(r".", Say("I understand. Is there anything else?"))])
    async with text_call(agent_settings, livekit_double) as tc:  # inbound
        tc.call.from_number = "+14155550199"
        watch_do_not_call(tc.call, tc.session, agent_settings)
        # partial words never count; the final transcript does
        tc.session.emit("user_input_transcribed", UserInputTranscribedEvent(transcript="Don't ring", is_final=False))
        assert await _written(agent_settings, tc.call.call_id, within_s=0.5) is None
        said = "Don't ring this number again, I never want to hear from you people."
        tc.session.emit("user_input_transcribed", UserInputTranscribedEvent(transcript=said, is_final=True))
        written = await _written(agent_settings, tc.call.call_id)
        assert written is not None and written.heard_by is HeardBy.CALLER_WORDS
        assert written.from_number == "+14155550199" and tc.call.do_not_call_requested


async def test_ordinary_words_write_nothing(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([])
    async with text_call(agent_settings, livekit_double) as tc:
        watch_do_not_call(tc.call, tc.session, agent_settings)
        tc.session.emit(
            "user_input_transcribed",
            UserInputTranscribedEvent(transcript="Can you call me back tomorrow?", is_final=True),
        )
        assert await _written(agent_settings, tc.call.call_id, within_s=1.0) is None
        assert not tc.call.do_not_call_requested


async def test_a_form_of_address_the_agent_just_used_is_no_request(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    # The backstop reads the caller's words with the agent's turn before them: after "sir" from the
    # agent, "don't call me, sir" is about naming; the same words with no such turn are a request.
    scripted_llm.script([Rule(r".", Say("Good morning, sir. How can I help?"))])
    async with text_call(agent_settings, livekit_double) as tc:
        watch_do_not_call(tc.call, tc.session, agent_settings)
        await tc.session.run(user_input="Hello?")
        tc.session.emit(
            "user_input_transcribed", UserInputTranscribedEvent(transcript="Don't call me, sir.", is_final=True)
        )
        assert await _written(agent_settings, tc.call.call_id, within_s=1.0) is None
        assert not tc.call.do_not_call_requested
        tc.session.emit(
            "user_input_transcribed", UserInputTranscribedEvent(transcript="Don't call me, man.", is_final=True)
        )
        written = await _written(agent_settings, tc.call.call_id)
        assert written is not None and written.heard_by is HeardBy.CALLER_WORDS
