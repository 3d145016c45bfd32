"""Audio out of POST /v1/audio/speech: every format decodes, rates and speed are honoured."""

from __future__ import annotations

import base64
import io
import json
import struct

import av
import numpy as np
import pytest

from tests.tts.conftest import RecordingBackend, speak
from tts.app.backends.espeak import EspeakBackend

TEXT = "Thank you for calling. Your appointment is confirmed for Tuesday."


def decode(data: bytes) -> tuple[int, float]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        return stream.rate, samples / stream.rate


@pytest.mark.parametrize(
    ("fmt", "content_type", "rate"),
    [
        ("mp3", "audio/mpeg", 24_000),
        ("opus", "audio/ogg", 48_000),
        ("aac", "audio/aac", 24_000),
        ("flac", "audio/flac", 24_000),
        ("wav", "audio/wav", 24_000),
    ],
)
def test_each_format_decodes_to_speech(client, fmt, content_type, rate):
    response = client.post("/v1/audio/speech", json=speak(TEXT, response_format=fmt))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(content_type)
    decoded_rate, seconds = decode(response.content)
    assert decoded_rate == rate
    assert 2.0 < seconds < 10.0  # a dozen words of speech, not silence or a stub


def test_pcm_is_24k_s16le_mono_like_openai(client):
    pcm = client.post("/v1/audio/speech", json=speak(TEXT, response_format="pcm")).content
    wav = client.post("/v1/audio/speech", json=speak(TEXT, response_format="wav", stream=False)).content
    assert len(pcm) % 2 == 0
    assert wav[:4] == b"RIFF" and struct.unpack("<I", wav[24:28])[0] == 24_000
    # Headerless: the same length as the wav's data (Piper varies durations a little per run).
    assert wav[:4] != pcm[:4]
    assert len(pcm) == pytest.approx(len(wav) - 44, rel=0.15)
    samples = np.frombuffer(pcm, dtype="<i2")
    assert np.abs(samples).max() > 1000


def test_whole_file_wav_has_exact_sizes_and_streaming_wav_has_open_sizes(client):
    whole = client.post("/v1/audio/speech", json=speak(TEXT, stream=False))
    assert whole.headers["content-length"] == str(len(whole.content))
    data_size = struct.unpack("<I", whole.content[40:44])[0]
    assert data_size == len(whole.content) - 44
    streamed = client.post("/v1/audio/speech", json=speak(TEXT)).content
    assert struct.unpack("<I", streamed[40:44])[0] == 0xFFFFFFFF


@pytest.mark.parametrize("speed", [0.5, 2.0])
def test_speed_changes_duration_piper_native(client, speed):
    _, normal = decode(client.post("/v1/audio/speech", json=speak(TEXT)).content)
    _, changed = decode(client.post("/v1/audio/speech", json=speak(TEXT, speed=speed)).content)
    # length_scale stretches phonemes, not the fixed pauses, so the change is a bit less than 1/speed.
    if speed > 1:
        assert normal / speed * 0.9 < changed < normal * 0.75
    else:
        assert normal * 1.5 < changed < normal / speed * 1.1


@pytest.mark.parametrize("speed", [0.25, 4.0])
def test_speed_extremes_time_stretch_for_espeak(make_client, speed):
    client = make_client(RecordingBackend(EspeakBackend(voice_names=["en-us"])))
    _, normal = decode(client.post("/v1/audio/speech", json=speak(TEXT, voice="en-us")).content)
    _, changed = decode(client.post("/v1/audio/speech", json=speak(TEXT, voice="en-us", speed=speed)).content)
    assert changed == pytest.approx(normal / speed, rel=0.1)


def test_sse_stream_format_events(client):
    with client.stream("POST", "/v1/audio/speech", json=speak(TEXT, response_format="pcm", stream_format="sse")) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in r.iter_lines() if line.startswith("data: ")]
    assert [e["type"] for e in events[:-1]] == ["speech.audio.delta"] * (len(events) - 1)
    assert len(events) >= 3  # several deltas: it streamed
    assert events[-1]["type"] == "speech.audio.done"
    assert events[-1]["usage"]["input_tokens"] == len(TEXT.split())
    pcm = b"".join(base64.b64decode(e["audio"]) for e in events[:-1])
    plain = client.post("/v1/audio/speech", json=speak(TEXT, response_format="pcm")).content
    assert len(pcm) % 2 == 0 and len(pcm) == pytest.approx(len(plain), rel=0.15)


def test_voice_alias_is_explicit(make_client, piper_backend):
    client = make_client(RecordingBackend(piper_backend), voice_aliases={"alloy": "joe"})
    assert client.post("/v1/audio/speech", json=speak("Hi there.", voice="alloy")).status_code == 200
    assert client.post("/v1/audio/speech", json=speak("Hi there.", voice="echo")).status_code == 400


def test_metrics_record_ttfb_rtf_and_outcomes(client):
    client.post("/v1/audio/speech", json=speak(TEXT))
    client.post("/v1/audio/speech", json=speak(""))
    text = client.get("/metrics").text
    assert 'tts_requests_total{response_format="wav",status="ok"} 1.0' in text
    assert 'tts_requests_total{response_format="wav",status="400"} 1.0' in text
    assert "tts_time_to_first_byte_seconds_count 1.0" in text
    assert "tts_real_time_factor_count 1.0" in text
    assert "tts_queue_depth 0.0" in text


def test_piper_thread_setting_reaches_onnxruntime():
    from tts.app.backends.piper import PiperBackend

    backend = PiperBackend(threads=1)
    backend.load()
    assert backend._voice.session.get_session_options().intra_op_num_threads == 1


def test_unchanged_openai_clients_name_openai_voices(make_client, piper_backend) -> None:
    """With TTS_OPENAI_VOICES_TO every OpenAI voice name speaks with that voice; an explicit alias
    of the same name still wins; without it, OpenAI's names stay unknown (a 400)."""
    client = make_client(RecordingBackend(piper_backend), openai_voices_to="joe", voice_aliases={"echo": "joe"})
    for name in ("alloy", "coral", "echo", "verse"):
        assert client.post("/v1/audio/speech", json=speak("Hi there.", voice=name)).status_code == 200, name
    assert client.post("/v1/audio/speech", json=speak("Hi there.", voice="not-a-voice")).status_code == 400
    plain = make_client(RecordingBackend(piper_backend))
    assert plain.post("/v1/audio/speech", json=speak("Hi there.", voice="alloy")).status_code == 400
