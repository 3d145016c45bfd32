"""The session report's live transcript is redacted before it leaves the agent: post-call,
dialing and the browser read it, and Dagster's IO storage keeps parts of it. The words as
heard go to their own object only with KEEP_RAW_TRANSCRIPT, which the bucket's lifecycle deletes."""

from __future__ import annotations

import json

import pytest
from livekit import api
from livekit.agents import llm

from agent.call_control import CallControl
from agent.settings import AgentSettings
from agent.worker import finish_call, new_call
from callcenter.bucket import Recordings
from callcenter.ids import new_call_id
from callcenter.paths import live_transcript_raw_path, report_path
from callcenter.report import parse_report
from doubles.livekit_server import LiveKitDouble

CARD_READ_IN_GROUPS = [
    ("assistant", "Can I have the card number please?"),
    ("user", "Sure, four one one one"),
    ("assistant", "Okay."),
    ("user", "one one one one, one one one one"),
    ("assistant", "Mm-hmm."),
    ("user", "one one one one."),
    ("assistant", "And the three digits on the back?"),
    ("user", "seven three one"),
]
LEAKS = ("four one one one", "one one one one", "seven three one")


def _history() -> llm.ChatContext:
    ctx = llm.ChatContext()
    for role, text in CARD_READ_IN_GROUPS:
        ctx.add_message(role=role, content=text)
    return ctx


@pytest.mark.parametrize("keep_raw", [False, True])
async def test_the_uploaded_report_holds_no_card_and_the_raw_words_only_where_kept(
    agent_settings: AgentSettings, livekit_double: LiveKitDouble, keep_raw: bool
) -> None:
    settings = agent_settings.model_copy(update={"keep_raw_transcript": keep_raw, "egress_enabled": False})
    lkapi = api.LiveKitAPI(livekit_double.url, livekit_double.api_key, livekit_double.api_secret)
    try:
        call = new_call(CallControl(lkapi, new_call_id()), None, settings)
        await finish_call(call, _history(), lkapi, settings)
    finally:
        await lkapi.aclose()
    bucket = Recordings(settings.recordings_bucket, "local", settings.storage_emulator_host)
    stored = bucket.read_bytes(report_path(call.call_id)).decode()
    assert not any(leak in stored.lower() for leak in LEAKS), stored
    report = parse_report(stored.encode())
    assert "[REDACTED" in report.turns[1].text and "[REDACTED" in report.turns[-1].text
    assert [t.speaker.value for t in report.turns] == ["agent", "caller"] * 4  # every turn kept, in order
    raw = bucket.read_if_present(live_transcript_raw_path(call.call_id))
    if keep_raw:
        assert raw is not None and json.loads(raw)[-1]["text"] == "seven three one"
        assert live_transcript_raw_path(call.call_id).endswith(".raw.json")  # the lifecycle rule's suffix
    else:
        assert raw is None
