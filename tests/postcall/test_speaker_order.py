"""Speakers in the right order: a reply never stands before the question it answers (issue 22, item 1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from callcenter.redaction import RedactionPolicy
from callcenter.report import Speaker, Turn
from devstack.demo_calls import SCENARIOS
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.ordering import align_to_turns, speaker_order
from orchestration.defs.postcall.speech import SpeechSegment, WhisperSpeechToText
from orchestration.defs.postcall.transcription import transcribe_call

pytestmark = pytest.mark.xdist_group("postcall")

STARTED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
A, C = Speaker.AGENT, Speaker.CALLER
TURNS = [
    Turn(speaker=A, text="Hi, this is Ava. This call may be recorded.", start=0.6, end=7.7),
    Turn(speaker=C, text="Please stop calling me.", start=8.2, end=11.4),
    Turn(speaker=A, text="I understand. I have added your number.", start=12.4, end=18.1),
]


def _transcribe(call, stt):
    objects = {call.audio_object: call.audio, call.report_object: call.report.model_dump_json().encode()}
    return transcribe_call(CallRef(call.report_object, 1), objects.get, stt, RedactionPolicy())


def _order(result):
    return speaker_order(
        [(s.speaker, s.start, s.end) for s in result.recording_transcript],
        result.report.turns,
        result.channel_stats.get("turn_offset_s", 0.0),
    )


def test_the_order_check_sees_a_reply_before_its_prompt() -> None:
    # As Whisper with VAD gave it: the agent's reply starts where its channel's greeting ended.
    snapped = [(A, 0.3, 7.54), (A, 7.54, 17.8), (C, 7.92, 10.92)]
    order = speaker_order(snapped, TURNS)
    assert order.replies_before_prompts == 1 and order.max_early_s == pytest.approx(4.86)
    assert speaker_order([(A, 0.3, 7.54), (C, 8.1, 10.9), (A, 12.5, 18.0)], TURNS).in_order


def test_a_snapped_start_is_moved_to_its_live_turn() -> None:
    aligned = align_to_turns(
        [(A, 7.54, 17.8, "reply"), (C, 7.92, 10.92, "prompt"), (A, 40.0, 41.0, "unheard live")], TURNS
    )
    assert [(s, round(a, 2)) for s, a, _, _ in aligned] == [(A, 12.15), (C, 7.95), (A, 40.0)]


class _SnappingSTT:
    """Returns, per track in the order asked (agent, caller), segments whose starts snapped back."""

    def __init__(self, per_track: list[list[SpeechSegment]]) -> None:
        self.per_track = list(per_track)

    def transcribe(self, samples):
        return self.per_track.pop(0)


def test_a_snapped_reply_is_placed_after_its_prompt(render_demo_call) -> None:
    call = render_demo_call("do_not_call", STARTED)
    turns = call.report.turns
    agent = [SpeechSegment(0.3, turns[0].end, turns[0].text), SpeechSegment(turns[0].end, turns[2].end, turns[2].text)]
    caller = [SpeechSegment(turns[1].start - 0.3, turns[1].end, turns[1].text)]
    result = _transcribe(call, _SnappingSTT([agent, caller]))
    assert [s.speaker for s in result.recording_transcript] == [A, C, A]
    assert _order(result).in_order


@pytest.mark.timeout(900)
@pytest.mark.parametrize("scenario", [s.name for s in SCENARIOS])
def test_replies_follow_their_prompts_on_the_demo_calls(render_demo_call, scenario: str) -> None:
    """Real Whisper over each demo call: every reply after its prompt, each turn's first words near its time."""
    call = render_demo_call(scenario, STARTED)
    result = _transcribe(call, WhisperSpeechToText())
    order = _order(result)
    assert order.matched_turns >= len(call.report.turns) - 1, order
    assert order.in_order, order
    assert order.max_early_s < 1.0, order
