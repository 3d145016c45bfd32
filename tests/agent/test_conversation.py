"""Text-mode behaviour of the call agent: real AgentSession and openai.LLM against a scripted
chat-completions server; telephony actions land on the LiveKit Twirp double."""

from __future__ import annotations

import asyncio

import pytest

from agent.settings import AgentSettings
from callcenter.dispatch import VoicemailPolicy
from callcenter.outcomes import CallOutcome
from doubles.livekit_server import LiveKitDouble
from doubles.llm_server import CallTool, Rule, Say, ScriptedLLM, tools_offered
from tests.agent.conftest import outbound_request, text_call

pytestmark = pytest.mark.timeout(60)


def assistant_texts(session) -> list[str]:
    return [m.text_content for m in session.history.items if m.type == "message" and m.role == "assistant"]


async def test_greeting_identifies_an_automated_agent_of_the_business(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([])
    async with text_call(agent_settings, livekit_double) as tc:
        await asyncio.wait_for(tc.agent.greet().wait_for_playout(), 10)
        greeting = assistant_texts(tc.session)[0]
        assert "automated" in greeting.lower()
        assert "Northwind Energy" in greeting
        assert "recorded" in greeting  # the inbound line's recording notice
        assert tc.call.automated_agent_disclosed and tc.call.recording_disclosed


async def test_recording_notice_is_left_out_when_the_campaign_says_so(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([])
    request = outbound_request(recording_disclosure=False)
    async with text_call(agent_settings, livekit_double, request) as tc:
        await asyncio.wait_for(tc.agent.greet().wait_for_playout(), 10)
        greeting = assistant_texts(tc.session)[0]
        assert "automated" in greeting.lower() and "recorded" not in greeting
        assert tc.call.recording_disclosed is False


async def test_answers_with_the_model_and_the_persona_prompt(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([Rule(r"bill", Say("Bills are due on the first of each month."))])
    async with text_call(agent_settings, livekit_double) as tc:
        result = await tc.session.run(user_input="When is my bill due?")
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        assert assistant_texts(tc.session)[-1] == "Bills are due on the first of each month."
    sent = scripted_llm.requests[-1]
    assert "Northwind Energy" in sent["messages"][0]["content"]
    assert tools_offered(sent) == {"transfer_to_human", "end_call", "record_do_not_call"}
    assert livekit_double.requests == []  # answering a question touches no telephony


async def test_transfer_to_a_human_is_a_cold_sip_transfer(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([Rule(r"person|human|agent", CallTool("transfer_to_human"))])
    async with text_call(agent_settings, livekit_double) as tc:
        result = await tc.session.run(user_input="Can I talk to a real person please?")
        result.expect.next_event().is_function_call(name="transfer_to_human")
        result.expect.next_event().is_function_call_output()
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        await asyncio.wait_for(tc.call.control.finished.wait(), 10)
        assert "connect you" in assistant_texts(tc.session)[-1]
        assert tc.call.outcome is CallOutcome.TRANSFERRED
        assert tc.call.transferred_to == "tel:+14155550100"
        [transfer] = livekit_double.calls("SIP", "TransferSIPParticipant")
        assert transfer.message.room_name == tc.call.call_id
        assert transfer.message.participant_identity == "sip_+14155550199"
        assert transfer.message.transfer_to == "tel:+14155550100"
        assert transfer.claims["sip"]["call"] is True
        assert transfer.claims["video"]["roomAdmin"] is True


async def test_transfer_without_a_queue_keeps_the_caller_with_the_agent(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    settings = agent_settings.model_copy(update={"inbound_transfer_number": None})
    scripted_llm.script(
        [
            Rule(r"person", CallTool("transfer_to_human")),
            Rule(r"Nobody can take the call", Say("I'm sorry, nobody is free right now."), role="tool"),
        ]
    )
    async with text_call(settings, livekit_double) as tc:
        result = await tc.session.run(user_input="Let me speak to a person")
        result.expect.next_event().is_function_call(name="transfer_to_human")
        result.expect.next_event().is_function_call_output()
        result.expect.next_event().is_message(role="assistant")
        assert assistant_texts(tc.session)[-1] == "I'm sorry, nobody is free right now."
        assert tc.call.outcome is None
    assert livekit_double.calls("SIP", "TransferSIPParticipant") == []


async def test_end_call_says_goodbye_then_hangs_up(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([Rule(r"that's all|bye", CallTool("end_call"))])
    async with text_call(agent_settings, livekit_double) as tc:
        result = await tc.session.run(user_input="That's all, thanks, bye")
        result.expect.next_event().is_function_call(name="end_call")
        result.expect.next_event().is_function_call_output()
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        await asyncio.wait_for(tc.call.control.finished.wait(), 10)
        assert assistant_texts(tc.session)[-1] == tc.call.persona.goodbye
        [delete] = livekit_double.calls("RoomService", "DeleteRoom")
        assert delete.message.room == tc.call.call_id
        assert tc.call.final_outcome() is CallOutcome.ANSWERED


async def test_do_not_call_request_is_recorded_and_ends_the_call(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([Rule(r"stop calling", CallTool("record_do_not_call"))])
    request = outbound_request()
    async with text_call(agent_settings, livekit_double, request) as tc:
        result = await tc.session.run(user_input="Stop calling me. I'm not interested.")
        result.expect.next_event().is_function_call(name="record_do_not_call")
        result.expect.next_event().is_function_call_output()
        result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        await asyncio.wait_for(tc.call.control.finished.wait(), 10)
        assert "do-not-call" in assistant_texts(tc.session)[-1]
        assert tc.call.do_not_call_requested is True
        assert tc.call.final_outcome() is CallOutcome.DO_NOT_CALL
        assert [c.message.room for c in livekit_double.calls("RoomService", "DeleteRoom")] == [request.call_id]


@pytest.mark.parametrize("policy", [VoicemailPolicy.LEAVE_MESSAGE, VoicemailPolicy.HANG_UP])
async def test_voicemail_leaves_the_campaign_message_or_hangs_up(
    policy: VoicemailPolicy, agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([Rule(r"leave a message|after the tone", CallTool("answering_machine_detected"))])
    request = outbound_request(voicemail_policy=policy, voicemail_message="Please call Northwind Energy back.")
    async with text_call(agent_settings, livekit_double, request) as tc:
        result = await tc.session.run(
            user_input="You have reached 415 555 0123. Please leave a message after the tone."
        )
        result.expect.next_event().is_function_call(name="answering_machine_detected")
        result.expect.next_event().is_function_call_output()
        if policy is VoicemailPolicy.LEAVE_MESSAGE:
            result.expect.next_event().is_message(role="assistant")
        result.expect.no_more_events()
        await asyncio.wait_for(tc.call.control.finished.wait(), 10)
        spoken = assistant_texts(tc.session)
        if policy is VoicemailPolicy.LEAVE_MESSAGE:
            assert spoken[-1] == "Please call Northwind Energy back."
        else:
            assert spoken == []
        assert tc.call.final_outcome() is CallOutcome.VOICEMAIL
        assert len(livekit_double.calls("RoomService", "DeleteRoom")) == 1
    first = scripted_llm.requests[0]
    assert "answering_machine_detected" in tools_offered(first)
    assert "answering_machine_detected" in first["messages"][0]["content"]  # told when to use it


async def test_outbound_agent_presses_keys_for_a_phone_menu_only_when_allowed(
    agent_settings: AgentSettings, scripted_llm: ScriptedLLM, livekit_double: LiveKitDouble
) -> None:
    scripted_llm.script([Rule(r"press", CallTool("send_dtmf", {"digits": "12#"}))])
    request = outbound_request()
    async with text_call(agent_settings, livekit_double, request) as tc:
        pressed: list[str] = []

        async def fake_send(digits: str) -> None:  # no room here: capture what would be published
            pressed.append(digits)

        tc.call.control.send_dtmf = fake_send  # type: ignore[method-assign]
        result = await tc.session.run(user_input="For billing, press 1.")
        result.expect.next_event().is_function_call(name="send_dtmf", arguments={"digits": "12#"})
        result.expect.next_event().is_function_call_output(output="pressed 12#")
        assert pressed == ["12#"]
