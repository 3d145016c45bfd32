"""devstack/stt_server.py: the local OpenAI-compatible transcription endpoint."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import httpx
import numpy as np
import pytest
from livekit import rtc
from livekit.plugins import openai as lk_openai

from agent.local_audio import read_wav

pytestmark = [pytest.mark.xdist_group("agent_audio"), pytest.mark.timeout(120)]

SENTENCE = "Hello, I would like to check the status of my order."


KEY_WORDS = {"hello", "would", "like", "check", "status", "order"}


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def recognised(text: str) -> int:
    """How many of the sentence's key words came back (tiny.en on robotic espeak speech
    is not word-perfect, and int8 CPU decoding varies a little between runs)."""
    return len(KEY_WORDS & words(text))


@pytest.fixture(scope="module")
def spoken_wavs(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Path]:
    """The sentence spoken by espeak-ng, as 16 kHz and 8 kHz (telephony) 16-bit WAVs."""
    root = tmp_path_factory.mktemp("stt")
    raw = root / "raw.wav"
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(raw), SENTENCE], check=True, timeout=30)
    out = {}
    for rate in (16000, 8000):
        path = root / f"speech-{rate}.wav"
        subprocess.run(["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(path)], check=True, timeout=30)
        out[rate] = path
    return out


@pytest.mark.parametrize("rate", [16000, 8000])
def test_transcribes_speech_at_wideband_and_telephony_rates(stt_server: str, spoken_wavs: dict[int, Path], rate: int) -> None:
    with spoken_wavs[rate].open("rb") as f:
        resp = httpx.post(
            f"{stt_server}/audio/transcriptions",
            files={"file": ("speech.wav", f, "audio/wav")},
            data={"model": "whisper-1", "response_format": "verbose_json"},
            timeout=60,
        )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    # 8 kHz narrowband costs tiny.en some accuracy; most key words must survive both
    assert recognised(body["text"]) >= 4, body["text"]
    assert body["duration"] == pytest.approx(len(read_wav(spoken_wavs[rate])[0]) / rate, abs=0.05)
    assert body["segments"] and body["segments"][0]["start"] >= 0


async def test_the_agents_stt_plugin_reads_it(stt_server: str, spoken_wavs: dict[int, Path]) -> None:
    pcm, rate = read_wav(spoken_wavs[16000])
    frame = rtc.AudioFrame(data=pcm.tobytes(), sample_rate=rate, num_channels=1, samples_per_channel=len(pcm))
    stt = lk_openai.STT(base_url=stt_server, api_key="unused", model="tiny.en", language="en", use_realtime=False)
    event = await stt.recognize([frame])
    assert recognised(event.alternatives[0].text) >= 4, event.alternatives[0].text


def test_text_format_is_plain_text(stt_server: str, spoken_wavs: dict[int, Path]) -> None:
    with spoken_wavs[16000].open("rb") as f:
        resp = httpx.post(
            f"{stt_server}/audio/transcriptions",
            files={"file": ("speech.wav", f, "audio/wav")},
            data={"model": "tiny.en", "response_format": "text"},
            timeout=60,
        )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    assert recognised(resp.text) >= 4, resp.text


@pytest.mark.parametrize(
    ("data", "status", "param"),
    [
        ({"model": "gpt-4o-transcribe"}, 404, "model"),
        ({"model": "whisper-1", "response_format": "srt"}, 400, "response_format"),
        ({"model": "whisper-1", "language": "fr"}, 400, "language"),
        ({"model": "whisper-1", "temperature": "3"}, 400, "temperature"),
    ],
)
def test_unsupported_parameters_are_rejected_in_the_openai_envelope(
    stt_server: str, data: dict, status: int, param: str
) -> None:
    silence = np.zeros(1600, np.int16)
    frame = rtc.AudioFrame(data=silence.tobytes(), sample_rate=16000, num_channels=1, samples_per_channel=1600)
    resp = httpx.post(
        f"{stt_server}/audio/transcriptions",
        files={"file": ("s.wav", frame.to_wav_bytes(), "audio/wav")},
        data=data,
        timeout=30,
    )
    assert resp.status_code == status
    err = resp.json()["error"]
    assert err["param"] == param and err["message"] and err["type"] == "invalid_request_error"


def test_missing_or_empty_audio_is_a_400(stt_server: str) -> None:
    missing = httpx.post(f"{stt_server}/audio/transcriptions", data={"model": "whisper-1"}, timeout=30)
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "file"
    empty = httpx.post(
        f"{stt_server}/audio/transcriptions",
        files={"file": ("e.wav", b"", "audio/wav")},
        data={"model": "whisper-1"},
        timeout=30,
    )
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "invalid_audio"
