"""A recording paused for a payment step is several Ogg/Opus files (Egress cannot pause: each
stop/start is a new file). Post-call joins them on the call's clock, silence for the gaps, so the
session report's turn times still line up; a missing segment fails the recording, never silently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from callcenter.audio import encode_ogg_opus
from callcenter.ids import new_call_id
from callcenter.paths import audio_segment_path, report_path
from callcenter.redaction import RedactionPolicy
from callcenter.report import RecordingSegment, SessionReport, Speaker, Turn
from orchestration.defs.postcall.audio import (
    STT_RATE,
    RecordingUnusable,
    SegmentedRecordingReader,
    open_recording,
    speech_fraction,
)
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.speech import SpeechToText
from orchestration.defs.postcall.transcription import transcribe_call

RATE = 48_000


def tone(seconds: float, channel: int, freq: float = 440.0) -> bytes:
    t = np.arange(int(seconds * RATE)) / RATE
    stereo = np.zeros((len(t), 2), np.float32)
    stereo[:, channel] = 0.3 * np.sin(2 * np.pi * freq * t)
    return encode_ogg_opus(stereo, RATE)


def joined(reader) -> np.ndarray:  # noqa: ANN001
    return np.concatenate([block for _, block in reader.blocks(block_s=1.0)])


def loud(pcm: np.ndarray, a: float, b: float) -> float:
    return speech_fraction(pcm[int(a * STT_RATE) : int(b * STT_RATE)])


def test_segments_are_placed_at_their_offsets_with_silence_for_the_gap() -> None:
    objects = {"seg1": tone(2.0, channel=1)}
    reader = open_recording(tone(3.0, channel=0), [("seg0", 0.0), ("seg1", 7.0)], objects.get)
    assert isinstance(reader, SegmentedRecordingReader)
    pcm = joined(reader)

    assert abs(len(pcm) / STT_RATE - 9.0) < 0.1
    assert loud(pcm[:, 0], 0.2, 2.8) > 0.9 and loud(pcm[:, 1], 0.2, 2.8) == 0.0  # the agent, first segment
    assert loud(pcm[:, 0], 3.2, 6.9) == 0.0 and loud(pcm[:, 1], 3.2, 6.9) == 0.0  # the paused span: silence
    assert loud(pcm[:, 1], 7.2, 8.8) > 0.9  # the caller, second segment, where the report's clock says
    assert reader.paused_spans and reader.paused_spans[0][1] == 7.0 and abs(reader.paused_spans[0][0] - 3.0) < 0.1


def test_blocks_keep_the_readers_contract_every_block_but_the_last_full() -> None:
    objects = {"seg1": tone(1.3, channel=1)}
    reader = open_recording(tone(1.7, channel=0), [("seg0", 0.0), ("seg1", 2.5)], objects.get)
    blocks = list(reader.blocks(block_s=1.0))
    assert [start for start, _ in blocks] == [i * STT_RATE for i in range(len(blocks))]
    assert all(len(b) == STT_RATE for _, b in blocks[:-1])


def test_a_missing_segment_fails_the_recording_with_the_reason() -> None:
    with pytest.raises(RecordingUnusable, match="segment 1 of 2 is missing"):
        open_recording(tone(1.0, channel=0), [("seg0", 0.0), ("seg1", 3.0)], {}.get)


def test_a_corrupt_segment_is_named() -> None:
    with pytest.raises(RecordingUnusable, match="segment 1"):
        open_recording(tone(1.0, channel=0), [("seg0", 0.0), ("seg1", 3.0)], {"seg1": b"not audio"}.get)


def test_one_segment_reads_as_before() -> None:
    reader = open_recording(tone(1.0, channel=0), [], {}.get)
    assert not isinstance(reader, SegmentedRecordingReader)
    assert abs(len(joined(reader)) / STT_RATE - 1.0) < 0.1


class NoWords(SpeechToText):
    def transcribe(self, samples: np.ndarray) -> list:
        return []


def segmented_call(objects: dict[str, bytes], *, second: bool = True) -> CallRef:
    call_id = new_call_id()
    now = datetime.now(UTC)
    report = SessionReport(
        call_id=call_id,
        room="r",
        direction="inbound",
        started_at=now,
        answered_at=now,
        ended_at=now + timedelta(seconds=9),
        outcome="answered",
        recording_path=audio_segment_path(call_id, 0),
        recording_segments=[
            RecordingSegment(path=audio_segment_path(call_id, 0), start=0.0, end=3.0),
            RecordingSegment(path=audio_segment_path(call_id, 1), start=7.0),
        ],
        turns=[Turn(speaker=Speaker.CALLER, text="I'd like to pay my bill", start=0.5, end=2.5)],
    )
    objects[report_path(call_id)] = report.model_dump_json().encode()
    objects[audio_segment_path(call_id, 0)] = tone(3.0, channel=0)
    if second:
        objects[audio_segment_path(call_id, 1)] = tone(2.0, channel=1)
    return CallRef(report_path(call_id), 1)


def test_post_call_reads_every_segment_of_a_paused_recording_as_one_call() -> None:
    objects: dict[str, bytes] = {}
    ref = segmented_call(objects)
    read: list[str] = []
    call = transcribe_call(ref, lambda name: read.append(name) or objects.get(name), NoWords(), RedactionPolicy())
    assert any(name.endswith("/audio.1.ogg") for name in read)
    assert call.recording_problem is None and abs(call.recording_duration_s - 9.0) < 0.1
    assert call.duration_mismatch is None  # the gap is on the call's clock: answer to hang-up still matches
    [(paused_from, paused_to)] = call.recording_paused
    assert abs(paused_from - 3.0) < 0.1 and paused_to == 7.0


def test_a_paused_recording_missing_a_segment_is_flagged_and_the_live_transcript_kept() -> None:
    objects: dict[str, bytes] = {}
    call = transcribe_call(segmented_call(objects, second=False), objects.get, NoWords(), RedactionPolicy())
    assert call.recording_problem == "recording segment 1 of 2 is missing from the bucket"
    assert call.transcript and call.failure is None
