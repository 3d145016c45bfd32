"""A warm transfer on the real stack when nobody can be reached: the agent worker as it runs in
production, the real livekit-server v1.13.5, the caller from devstack/phone_line.py (the stand-in
for livekit-sip), the local STT and TTS. The model is the scripted one, so the call's course is
the agent's doing, not a small model's whim.

The human's leg needs livekit-sip, which cannot be built here (docs/local-livekit.md): the real
server answers CreateSIPParticipant with an error (no SIP service answers on its bus). That is
the branch tested end to end: hold music, the dial, the failure with the server's reason, back to
the caller with the callback offer, the callback they accept in the session report. The branch
where the human answers is tested against the Twirp double (tests/agent/test_warm_transfer.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import yaml

from callcenter.report import TransferStepName
from devstack.livekit import LocalLiveKit
from devstack.phone_line import wait_for_report
from doubles.llm_server import CallTool, Rule, Say, ScriptedLLM
from orchestration.resources.storage import RecordingsBucket
from tests.conftest import REPO_ROOT
from tests.e2e.conftest import running_worker
from tests.e2e.test_inbound_calls import call, caller_says

pytestmark = [pytest.mark.slow, pytest.mark.calls, pytest.mark.xdist_group("e2e_calls"), pytest.mark.timeout(240)]

HUMAN = "+14155550142"
RINGING_TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedLLM]:
    llm = ScriptedLLM(
        [
            Rule(r"call me back|as soon as", CallTool("schedule_callback", {"when": "asap"})),
            Rule(r"person|someone", CallTool("transfer_to_human")),
            Rule(r"callback recorded", CallTool("end_call"), role="tool"),
        ],
        default=Say("Could you say that again?"),
    ).start()
    try:
        yield llm
    finally:
        llm.stop()


@pytest.fixture(scope="module")
def warm_worker(
    real_livekit: LocalLiveKit,
    rollout_sip: LocalLiveKit,
    stt_server: str,
    tts_server: str,
    scripted: ScriptedLLM,
    e2e_bucket: RecordingsBucket,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LocalLiveKit]:
    """The agent worker whose inbound persona transfers warm, to a number only livekit-sip could ring."""
    personas = tmp_path_factory.mktemp("personas")
    persona = yaml.safe_load((REPO_ROOT / "agent/personas/inbound_support.yaml").read_text())
    persona["warm_transfer"] = {"ringing_timeout_s": RINGING_TIMEOUT_S}
    (personas / "inbound_support.yaml").write_text(yaml.safe_dump(persona))
    with running_worker(
        real_livekit,
        stt_server=stt_server,
        tts_server=tts_server,
        llm_base_url=scripted.base_url,
        bucket=e2e_bucket,
        log_dir=tmp_path_factory.mktemp("agent"),
        PERSONAS_DIR=str(personas),
        INBOUND_TRANSFER_NUMBER=HUMAN,
        LLM_MODEL="scripted",
    ) as lk:
        yield lk


def test_nobody_reachable_the_caller_is_offered_a_callback_and_it_is_in_the_report(
    warm_worker: LocalLiveKit, e2e_bucket: RecordingsBucket
) -> None:
    lk = warm_worker
    started = time.monotonic()
    result = call(  # routed by the dispatch rule the rollout created, as a carrier's call is
        lk,
        script=[
            caller_says("Can I speak to a person, please?"),
            # after the hold (the agent hears nobody then), when the offer has been quiet a while
            replace(caller_says("Yes, please call me back as soon as possible."), after_agent_quiet_s=3.0),
        ],
        hang_up_after_s=3,
    )
    assert result.agent_joined
    report = wait_for_report(e2e_bucket, result.room, timeout_s=30)
    elapsed = time.monotonic() - started
    # the figure in docs/benchmarks.md (never asserted: the 2-core CI machine is shared)
    print(f"warm transfer e2e: call and report in {elapsed:.1f} s; steps {report.transfer_steps}")

    steps = [s.step for s in report.transfer_steps]
    assert steps == [
        TransferStepName.HOLD_STARTED,
        TransferStepName.DIALLED,
        TransferStepName.FAILED,
        TransferStepName.RETURNED,
    ], report.transfer_steps
    failed = report.transfer_steps[2]
    assert failed.detail and failed.detail.startswith(("livekit ", "sip ", "timeout")), failed
    # the agent's own bound: the dial never holds the caller past the ringing timeout and its margin
    assert (failed.at - report.transfer_steps[1].at).total_seconds() < RINGING_TIMEOUT_S + 10 + 2
    assert report.callback_requested == "asap", report.turns
    assert report.outcome.value == "answered" and report.transferred_to is None
    agent_said = " ".join(t.text.lower() for t in report.turns if t.speaker.value == "agent")
    assert "hold" in agent_said and "call you back" in agent_said, report.turns


def test_the_real_server_refuses_to_move_a_participant(real_livekit: LocalLiveKit) -> None:
    """Why a self-hosted warm transfer cannot connect the human: livekit-server v1.13.5 answers
    MoveParticipant with an error (its RoomManager: "not implemented"), so the agent goes back to
    the caller with the callback offer (tests/agent/test_warm_transfer.py plays that branch)."""
    from livekit import api, rtc

    lk = real_livekit

    async def move() -> api.TwirpError:
        room = rtc.Room()
        token = (
            api.AccessToken(lk.api_key, lk.api_secret)
            .with_identity("human-agent-sip")
            .with_grants(api.VideoGrants(room_join=True, room="consult-move-check"))
            .to_jwt()
        )
        await room.connect(lk.url, token)
        try:
            async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as lkapi:
                with pytest.raises(api.TwirpError) as refused:
                    await lkapi.room.move_participant(
                        api.MoveParticipantRequest(
                            room="consult-move-check", identity="human-agent-sip", destination_room="caller-move-check"
                        )
                    )
                return refused.value
        finally:
            await room.disconnect()

    refused = asyncio.run(asyncio.wait_for(move(), 30))
    print(f"MoveParticipant on livekit-server: {refused.code}: {refused.message}")
    assert "not implemented" in refused.message
