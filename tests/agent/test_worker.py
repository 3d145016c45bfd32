"""Worker wiring: explicit dispatch name, drain timeout, settings errors, job metadata checks."""

from __future__ import annotations

import pytest
from livekit import rtc
from livekit.agents.testing import fake_job_context

from agent.settings import AgentSettings, load_settings
from agent.worker import build_server, outbound_request
from callcenter.dispatch import AGENT_NAME
from tests.agent.conftest import outbound_request as make_request


def test_worker_registers_for_explicit_dispatch_and_drains_calls_for_the_grace_period() -> None:
    server = build_server(load_settings())
    assert server._agent_name == AGENT_NAME  # SIP dispatch rules and agent dispatches name it
    assert server._drain_timeout == 1800  # manifests: terminationGracePeriodSeconds >= this


def test_settings_errors_name_the_variable_to_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_BASE_URL", "vllm:8000")
    with pytest.raises(SystemExit, match="LLM_BASE_URL"):
        load_settings()


def test_local_stack_variables_are_understood(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_LLM_BASE_URL", "http://127.0.0.1:8081/v1")
    monkeypatch.setenv("CALLCENTER_STT_BASE_URL", "http://127.0.0.1:8082/v1")
    monkeypatch.setenv("STT_PROVIDER", "openai")
    settings = AgentSettings()
    assert settings.llm_base_url == "http://127.0.0.1:8081/v1"
    assert settings.stt_base_url == "http://127.0.0.1:8082/v1"


async def test_job_metadata_decides_the_direction_and_must_match_the_room() -> None:
    request = make_request()
    room = rtc.Room()
    with fake_job_context(room=room, job_metadata="") as ctx:
        assert outbound_request(ctx) is None  # inbound: the SIP dispatch rule sends no metadata
    # the fake room is unnamed: a dispatch for another room is refused before dialing
    with (
        fake_job_context(room=room, job_metadata=request.model_dump_json()) as ctx,
        pytest.raises(ValueError, match="does not match the room"),
    ):
        outbound_request(ctx)


def test_an_inbound_room_named_by_the_dispatch_rule_gets_a_call_id_of_its_own() -> None:
    from agent.worker import call_id_for
    from callcenter.ids import is_call_id, new_call_id

    room = "call-_+14155550199_hWk19HAnWf21"  # <room_prefix>_<caller>_<random>, as livekit-sip names it
    minted = call_id_for(room, None)
    assert is_call_id(minted) and "+1415" not in minted
    assert call_id_for(room, None) != minted  # one per call, never derived from the caller's number
    named = new_call_id()
    assert call_id_for(named, None) == named  # a room already named call-<uuid7> keeps its id
    request = make_request()
    assert call_id_for(request.call_id, request) == request.call_id


def test_worker_max_calls_loads_the_worker_by_its_running_calls() -> None:
    from types import SimpleNamespace

    from agent.worker import calls_load

    load = calls_load(2)
    assert [load(SimpleNamespace(active_jobs=[object()] * n)) for n in (0, 1, 2, 3)] == [0.0, 0.5, 1.0, 1.0]
    server = build_server(load_settings(worker_max_calls=2))
    assert server._load_threshold == 1.0 and server._load_fnc is not None


def test_the_worker_refuses_to_start_without_its_inbound_persona(tmp_path) -> None:
    """An INBOUND_PERSONA missing from PERSONAS_DIR stops the pod at start, naming both, instead of
    leaving the first inbound caller on a silent line."""
    with pytest.raises(SystemExit, match=r"INBOUND_PERSONA='reception'.*PERSONAS_DIR=.*no persona 'reception'"):
        build_server(load_settings(inbound_persona="reception", personas_dir=tmp_path))
    with pytest.raises(SystemExit, match="INBOUND_PERSONA=''"):
        build_server(load_settings(inbound_persona=""))
