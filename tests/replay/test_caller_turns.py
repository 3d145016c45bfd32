"""The caller's side of a recording cut at the report's caller turns."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from callcenter.audio import encode_ogg_opus
from callcenter.ids import new_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import audio_path
from callcenter.report import RecordingSegment, SessionReport, Speaker, Turn
from orchestration.defs.postcall.audio import STT_RATE, RecordingUnusable
from orchestration.defs.replay.caller_turns import MAX_GAP_S, CallerAudio, caller_channel, split_caller_turns

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)
A, C = Speaker.AGENT, Speaker.CALLER


def make_report(
    turns: list[tuple[Speaker, float, float]], channels: dict[str, int] | None = None, **kw
) -> SessionReport:
    call_id = new_call_id(T0)
    return SessionReport(
        call_id=call_id,
        room="call-x",
        recording_path=kw.pop("recording_path", audio_path(call_id)),
        direction=CallDirection.INBOUND,
        started_at=T0,
        ended_at=T0 + timedelta(seconds=20),
        outcome=CallOutcome.ANSWERED,
        turns=[Turn(speaker=s, text="words", start=a, end=b) for s, a, b in turns],
        **({"recording_channels": channels} if channels else {}),
        **kw,
    )


def reading(objects: dict[str, bytes]):  # noqa: ANN201
    return objects.get


def tone(seconds: float, freq: float) -> np.ndarray:
    t = np.arange(int(seconds * STT_RATE)) / STT_RATE
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def stereo(agent: list[tuple[float, float]], caller: list[tuple[float, float]], total: float) -> np.ndarray:
    out = np.zeros((int(total * STT_RATE), 2), np.float32)
    for ch, spans in ((0, agent), (1, caller)):
        for a, b in spans:
            seg = tone(b - a, 300 if ch == 0 else 900)
            out[int(a * STT_RATE) : int(a * STT_RATE) + len(seg), ch] = seg
    return out


def test_caller_turns_come_from_the_caller_channel_with_their_gaps() -> None:
    report = make_report([(A, 0.5, 3.0), (C, 4.0, 6.0), (A, 6.8, 9.0), (C, 14.0, 15.0)])
    audio = encode_ogg_opus(stereo([(0.5, 3.0), (6.8, 9.0)], [(4.0, 6.0), (14.0, 15.0)], 16), STT_RATE)
    turns = split_caller_turns(report, caller_channel(report, reading({report.recording_path: audio})))
    assert [(t.start_s, t.end_s) for t in turns] == [(4.0, 6.0), (14.0, 15.0)]
    assert turns[0].gap_s == 1.0  # 3.0 -> 4.0 as recorded
    assert turns[1].gap_s == MAX_GAP_S  # 5 s of silence waits at most MAX_GAP_S
    for t in turns:
        assert t.pcm.dtype == np.int16
        assert abs(len(t.pcm) / STT_RATE - (t.end_s - t.start_s + 0.4)) < 0.05
        # the caller's 900 Hz, not the agent's 300 Hz
        spectrum = np.abs(np.fft.rfft(t.pcm.astype(np.float32)))
        assert abs(np.argmax(spectrum) * STT_RATE / len(t.pcm) - 900) < 20


def test_the_callers_channel_is_the_one_the_report_names() -> None:
    report = make_report([(A, 0.5, 2.0), (C, 3.0, 4.0)], channels={"agent": 1, "caller": 0})
    audio = encode_ogg_opus(stereo([(0.5, 2.0)], [(3.0, 4.0)], 5)[:, ::-1].copy(), STT_RATE)
    (turn,) = split_caller_turns(report, caller_channel(report, reading({report.recording_path: audio})))
    spectrum = np.abs(np.fft.rfft(turn.pcm.astype(np.float32)))
    assert abs(np.argmax(spectrum) * STT_RATE / len(turn.pcm) - 900) < 20


def test_caller_turns_without_the_agent_between_are_one_utterance() -> None:
    report = make_report([(A, 0.0, 2.0), (C, 3.0, 4.0), (C, 4.5, 5.5), (A, 6.0, 7.0)])
    (turn,) = split_caller_turns(report, CallerAudio(np.zeros(8 * STT_RATE, np.float32), []))
    assert (turn.start_s, turn.end_s) == (3.0, 5.5)


def test_a_mono_recording_cannot_be_replayed() -> None:
    report = make_report([(A, 0.0, 1.0), (C, 1.5, 2.0)])
    with pytest.raises(RecordingUnusable, match="mono"):
        caller_channel(report, reading({report.recording_path: encode_ogg_opus(tone(3, 440)[:, None], STT_RATE)}))


def test_a_turn_past_the_recordings_end_is_an_error_not_an_empty_utterance() -> None:
    report = make_report([(A, 0.0, 1.0), (C, 30.0, 31.0)])
    with pytest.raises(RecordingUnusable, match="past the recording"):
        split_caller_turns(report, CallerAudio(np.zeros(5 * STT_RATE, np.float32), []))


def test_a_missing_recording_is_a_reason_not_a_crash() -> None:
    report = make_report([(A, 0.0, 1.0), (C, 1.5, 2.0)])
    with pytest.raises(RecordingUnusable, match="missing"):
        caller_channel(report, reading({}))


def test_a_recording_paused_for_payment_is_joined_and_the_unrecorded_turn_left_out() -> None:
    """Segments on the call's clock: the caller's turn after the pause is cut where the report puts
    it (taking the second file as if it started at 0 would cut silence), and the card digits
    spoken while the recording was stopped are not played (there is no audio of them)."""
    first, second = "recordings/x/audio.ogg", "recordings/x/audio-2.ogg"
    report = make_report(
        [(A, 0.5, 2.0), (C, 3.0, 4.0), (A, 4.5, 5.5), (C, 7.0, 9.0), (A, 11.0, 12.0), (C, 13.0, 14.0)],
        recording_path=first,
        recording_segments=[RecordingSegment(path=first, start=0, end=6.0), RecordingSegment(path=second, start=10.0)],
    )
    one = stereo([(0.5, 2.0), (4.5, 5.5)], [(3.0, 4.0)], 6.0)
    two = stereo([(1.0, 2.0)], [(3.0, 4.0)], 5.0)  # 11-12 and 13-14 on the call's clock
    audio = caller_channel(
        report, reading({first: encode_ogg_opus(one, STT_RATE), second: encode_ogg_opus(two, STT_RATE)})
    )
    assert audio.paused_spans and audio.paused_spans[0][0] <= 7.0 and audio.paused_spans[0][1] >= 9.0
    turns = split_caller_turns(report, audio)
    assert [(t.start_s, t.end_s) for t in turns] == [(3.0, 4.0), (13.0, 14.0)]
    last = turns[-1].pcm.astype(np.float32)
    assert np.sqrt(np.mean(last**2)) > 3000  # the caller's words, not the silence of a misplaced cut
