"""A recording paused for a payment step is several Ogg/Opus files (Egress cannot pause: each
stop/start is a new file). Post-call joins them on the call's clock, silence for the gaps, so the
session report's turn times still line up; a missing segment fails the recording, never silently."""

from __future__ import annotations

import numpy as np
import pytest

from callcenter.audio import encode_ogg_opus
from orchestration.defs.postcall.audio import (
    STT_RATE,
    RecordingUnusable,
    SegmentedRecordingReader,
    open_recording,
    speech_fraction,
)

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
