"""Decoding and transcription hold a bounded window of audio, whatever the call's length (issue 22, item 7).

Decoding the whole recording to PCM took about 1.4 GB per hour of audio (float32 at 16 kHz per
channel, plus the copies made to concatenate and split it): a long call's out-of-memory kill
failed the whole day's batch. Here the numpy memory traced while a call is transcribed must not
grow with its length, and STT must never be handed more than one chunk.
"""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from callcenter.audio import encode_ogg_opus
from callcenter.redaction import RedactionPolicy
from orchestration.defs.postcall.audio import STT_RATE, decode_recording
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.speech import SpeechSegment
from orchestration.defs.postcall.transcription import STT_CHUNK_S, transcribe_call

pytestmark = pytest.mark.xdist_group("postcall")

STARTED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


class _CountingSTT:
    """Stands in for Whisper: one segment per second of speech handed over; remembers the longest chunk."""

    def __init__(self) -> None:
        self.longest_s = 0.0
        self.seconds = 0.0

    def transcribe(self, samples: np.ndarray) -> list[SpeechSegment]:
        seconds = len(samples) / STT_RATE
        self.longest_s = max(self.longest_s, seconds)
        self.seconds += seconds
        return [SpeechSegment(0.1, min(seconds, 1.0), "word")] if seconds else []


def _long_call(render_demo_call, minutes: int):
    """The demo call's conversation repeated for ``minutes``, the report's turns repeated with it."""
    call = render_demo_call("billing_question", STARTED)
    decoded = decode_recording(call.audio)
    one = np.stack(decoded.channels, axis=1)
    repeats = int(minutes * 60 / decoded.duration_s) + 1
    stereo = np.tile(one, (repeats, 1))[: minutes * 60 * STT_RATE]
    turns = [
        t.model_copy(update={"start": t.start + k * decoded.duration_s, "end": t.end + k * decoded.duration_s})
        for k in range(repeats)
        for t in call.report.turns
        if t.end + k * decoded.duration_s <= minutes * 60
    ]
    answered = call.report.answered_at
    report = call.report.model_copy(
        update={"turns": turns, "ended_at": answered + timedelta(seconds=minutes * 60), "latency": []}
    )
    return {
        call.audio_object: encode_ogg_opus(stereo, STT_RATE),
        call.report_object: report.model_dump_json().encode(),
    }, call


def _transcribe_traced(objects, call):
    stt = _CountingSTT()
    tracemalloc.start()
    try:
        result = transcribe_call(CallRef(call.report_object, 1), objects.get, stt, RedactionPolicy())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, stt, peak / 2**20


@pytest.mark.timeout(600)
def test_memory_stays_flat_as_calls_get_longer(render_demo_call) -> None:
    short_objects, call = _long_call(render_demo_call, 3)
    long_objects, _ = _long_call(render_demo_call, 12)
    audio_mb = len(long_objects[call.audio_object]) / 2**20
    short, short_stt, short_peak = _transcribe_traced(short_objects, call)
    long, long_stt, long_peak = _transcribe_traced(long_objects, call)

    assert long.recording_duration_s == pytest.approx(12 * 60, abs=1)
    assert long.failure is None and long.recording_transcript
    assert long_stt.seconds == pytest.approx(2 * 12 * 60, rel=0.01)  # each speaker's track, all of it
    assert long_stt.longest_s <= STT_CHUNK_S + 1  # STT sees one chunk at a time
    # The whole 12-minute call as float32 PCM is 12*60*16000*4*2 = 88 MiB (and as much again in
    # copies); the encoded file itself is held once (it is what the bucket returned).
    assert long_peak - audio_mb < 70, (short_peak, long_peak, audio_mb)
    print(f"peak traced MiB: 3 min {short_peak:.1f}, 12 min {long_peak:.1f} (encoded {audio_mb:.1f})")
    assert long_peak - audio_mb < 1.5 * (short_peak - len(short_objects[call.audio_object]) / 2**20) + 10
    assert short.recording_duration_s == pytest.approx(3 * 60, abs=1) and short_stt.longest_s <= STT_CHUNK_S + 1
