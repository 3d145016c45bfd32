"""Bad recordings fail their own call with a reason: zero-byte, truncated, wrong codec, missing."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import av
import numpy as np
import pytest

from callcenter.record import TranscriptSource
from callcenter.redaction import RedactionPolicy
from orchestration.defs.postcall.audio import RecordingUnusable, decode_recording, speech_fraction
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.speech import WhisperSpeechToText
from orchestration.defs.postcall.transcription import transcribe_call
from tests.postcall.conftest import upload_call

pytestmark = pytest.mark.xdist_group("postcall")

STARTED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


def encode(codec: str, fmt: str, seconds: float = 1.0) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=48000, layout="stereo")
        pcm = (np.sin(np.linspace(0, 440 * 2 * np.pi * seconds, int(48000 * seconds))) * 8000).astype(np.int16)
        frame = av.AudioFrame.from_ndarray(np.repeat(pcm, 2).reshape(1, -1), format="s16", layout="stereo")
        frame.sample_rate = 48000
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty"),
        (b"this is not audio at all" * 10, "not a readable audio file"),
        (encode("pcm_s16le", "wav"), "codec is 'pcm_s16le'"),
        (encode("mp3", "mp3"), "codec is 'mp3"),
    ],
)
def test_unusable_recordings_name_the_problem(data: bytes, reason: str) -> None:
    with pytest.raises(RecordingUnusable, match=reason):
        decode_recording(data)


def test_ogg_opus_decodes_per_channel() -> None:
    decoded = decode_recording(encode("libopus", "ogg", seconds=2.0))
    assert decoded.codec == "opus" and len(decoded.channels) == 2
    assert abs(decoded.duration_s - 2.0) < 0.1
    assert speech_fraction(decoded.channels[0]) > 0.5 and speech_fraction(np.zeros(16000, np.float32)) == 0.0


def _transcribe(bucket, call):
    ref = CallRef(call.report_object, int(bucket.bucket.get_blob(call.report_object).generation))

    def read(name: str) -> bytes | None:
        blob = bucket.bucket.get_blob(name)
        return None if blob is None else blob.download_as_bytes()

    return transcribe_call(ref, read, WhisperSpeechToText(), RedactionPolicy())


def test_truncated_recording_is_flagged_and_the_live_transcript_kept(bucket, render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    upload_call(bucket, call, audio=call.audio[: len(call.audio) // 3])
    result = _transcribe(bucket, call)
    assert result.failure is None
    assert result.recording_duration_s is not None and result.recording_duration_s < call.report.duration_s / 2
    assert result.duration_mismatch is not None and "recording is" in result.duration_mismatch
    assert result.live_transcript and result.transcript  # something usable for analysis either way
    if result.chosen is TranscriptSource.LIVE:
        assert result.alternate_transcript == result.recording_transcript


def test_wrong_codec_falls_back_to_the_live_transcript(bucket, render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    upload_call(bucket, call, audio=encode("pcm_s16le", "wav"))
    result = _transcribe(bucket, call)
    assert "codec" in (result.recording_problem or "")
    assert result.chosen is TranscriptSource.LIVE and result.failure is None
    assert [s.text for s in result.transcript] == [t.text for t in call.report.turns]


def test_missing_recording_of_an_answered_call(bucket, render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    upload_call(bucket, call, audio=False)
    result = _transcribe(bucket, call)
    assert result.recording_bytes is None and result.recording_problem == "recording missing from the bucket"
    assert result.chosen is TranscriptSource.LIVE


def test_unreadable_report_fails_only_that_call(bucket, render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    upload_call(bucket, call, report=b'{"call_id": 1}')
    result = _transcribe(bucket, call)
    assert result.report is None and "not a valid SessionReport" in (result.failure or "")


def test_configured_patterns_redact_and_raw_is_kept_only_when_allowed(bucket, render_demo_call) -> None:
    from callcenter.redaction import RedactionPattern

    call = render_demo_call("wrong_number", STARTED)
    upload_call(bucket, call)
    ref = CallRef(call.report_object, int(bucket.bucket.get_blob(call.report_object).generation))
    raw_written: dict[str, bytes] = {}
    policy = RedactionPolicy(patterns=(RedactionPattern("name", r"\bmariah?\b"),))
    result = transcribe_call(ref, bucket.read_bytes, WhisperSpeechToText(), policy, write_raw=raw_written.__setitem__)
    texts = " ".join(s.text for s in result.recording_transcript + result.live_transcript)
    assert "Maria" not in texts and "[REDACTED NAME]" in texts and result.redactions >= 1
    (name, raw) = next(iter(raw_written.items()))
    assert name == call.report_object.replace("session.json", "transcript.raw.json") and b"Maria" in raw


def test_a_report_stored_under_another_call_is_not_indexed_under_either(bucket, render_demo_call) -> None:
    """A misfiled report (its call id is not its folder's) fails its own call with the reason; it
    must not go on to replace the row of the call it names."""
    call = render_demo_call("wrong_number", STARTED)
    other = render_demo_call("billing_question", STARTED.replace(minute=5))
    upload_call(bucket, call, report=other.report.model_dump_json().encode())
    result = _transcribe(bucket, call)
    assert result.report is None  # so call_index lists it as unindexable, with the reason
    assert f"names call {other.report.call_id}" in result.failure and call.report.call_id in result.failure
