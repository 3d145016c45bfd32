"""Fixtures of the agent tests: the scripted LLM, the GCS emulator bucket, the local STT/TTS servers."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from google.cloud import storage
from livekit import api

from agent.call_agent import CallCenterAgent, OutboundCallAgent, mark_answered
from agent.call_control import CallControl
from agent.call_state import CallState
from agent.pipeline import build_session
from agent.settings import AgentSettings, load_settings
from agent.worker import new_call
from callcenter.bucket import open_client
from callcenter.dispatch import OutboundCallRequest
from callcenter.ids import new_call_id
from doubles.livekit_server import LiveKitDouble
from doubles.llm_server import ScriptedLLM

RECORDINGS_BUCKET = "call-recordings-test"


@pytest.fixture(scope="session")
def scripted_llm() -> Iterator[ScriptedLLM]:
    llm = ScriptedLLM().start()
    try:
        yield llm
    finally:
        llm.stop()


@pytest.fixture(scope="session")
def recordings_bucket(gcs_emulator: str) -> str:
    client = open_client("local", gcs_emulator)
    if client.lookup_bucket(RECORDINGS_BUCKET) is None:
        client.create_bucket(RECORDINGS_BUCKET)
    return RECORDINGS_BUCKET


def bucket_client(gcs_emulator: str) -> storage.Client:
    return open_client("local", gcs_emulator)


@pytest.fixture
def agent_settings(scripted_llm: ScriptedLLM, gcs_emulator: str, recordings_bucket: str) -> AgentSettings:
    return load_settings(
        llm_base_url=scripted_llm.base_url,
        llm_model="scripted",
        recordings_bucket=recordings_bucket,
        storage_emulator_host=gcs_emulator,
        inbound_transfer_number="+14155550100",
    )


@dataclass
class TextCall:
    """A call driven in text mode: real AgentSession + openai.LLM, no room, no audio."""

    session: object
    agent: CallCenterAgent
    call: CallState
    lkapi: api.LiveKitAPI


@asynccontextmanager
async def text_call(
    settings: AgentSettings, double: LiveKitDouble, request: OutboundCallRequest | None = None
) -> AsyncIterator[TextCall]:
    lkapi = api.LiveKitAPI(double.url, double.api_key, double.api_secret)
    call_id = request.call_id if request else new_call_id()
    control = CallControl(lkapi, call_id)
    call = new_call(control, request, settings)
    if request is None:  # an inbound caller is on the line when the job starts
        control.caller_identity = "sip_+14155550199"
        mark_answered(call)
    session = build_session(settings, userdata=call, vad_model=None, with_audio=False)
    agent = OutboundCallAgent(call) if request else CallCenterAgent(call)
    await session.start(agent)
    try:
        yield TextCall(session=session, agent=agent, call=call, lkapi=lkapi)
    finally:
        await agent.wait_for_call_actions()
        await session.aclose()
        await lkapi.aclose()


def outbound_request(**overrides: object) -> OutboundCallRequest:
    fields: dict[str, object] = {
        "call_id": new_call_id(),
        "phone_number": "+14155550123",
        "campaign_id": "plan-renewal-2026-11",
        "contact_id": "contact-42",
        "attempt_id": "attempt-42-1",
        "persona": "plan_renewal",
        "transfer_number": "+14155550100",
    }
    fields.update(overrides)
    return OutboundCallRequest(**fields)  # type: ignore[arg-type]


