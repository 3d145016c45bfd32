"""The real server (`python -m tts.app`) on loopback, driven by the clients the agent uses."""

from __future__ import annotations

import io

import av
import httpx
import openai
import pytest
from livekit.agents import tts as agents_tts
from livekit.plugins import openai as lk_openai

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("tts-live-server")]  # one server, one worker

TEXT = "Hello, this is the call center. Your order has shipped. Is there anything else I can help with?"


def seconds_of(data: bytes) -> float:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        return sum(f.samples for f in container.decode(stream)) / stream.rate


async def collect_frames(stream) -> tuple[int, float, set[int]]:
    frames = 0
    seconds = 0.0
    rates = set()
    async for event in stream:
        frame = event.frame
        frames += 1
        seconds += frame.samples_per_channel / frame.sample_rate
        rates.add(frame.sample_rate)
    return frames, seconds, rates


@pytest.mark.parametrize("model", ["tts-1", "gpt-4o-mini-tts"])  # audio stream, then SSE (LiveKit picks by model)
async def test_livekit_openai_plugin_synthesize(live_server, model):
    tts = lk_openai.TTS(base_url=f"{live_server}/v1", api_key="unused", model=model, voice="joe", response_format="wav")
    try:
        async with tts.synthesize(TEXT) as stream:
            frames, seconds, rates = await collect_frames(stream)
    finally:
        await tts.aclose()
    assert frames > 5
    assert rates == {24_000}
    assert 3.0 < seconds < 15.0


async def test_livekit_openai_plugin_stream_through_adapter(live_server):
    # The agent streams LLM text: LiveKit's StreamAdapter cuts sentences and calls synthesize per sentence.
    # Its default voice is "ash", which this server maps explicitly (TTS_VOICE_ALIASES=ash=joe).
    base = lk_openai.TTS(base_url=f"{live_server}/v1", api_key="unused", model="tts-1", response_format="wav")
    adapter = agents_tts.StreamAdapter(tts=base)
    try:
        stream = adapter.stream()
        for word in TEXT.split(" "):
            stream.push_text(word + " ")
        stream.end_input()
        frames, seconds, rates = await collect_frames(stream)
        await stream.aclose()
    finally:
        await adapter.aclose()
        await base.aclose()
    assert frames > 5 and rates == {24_000} and 3.0 < seconds < 15.0


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav"])
async def test_official_openai_client_streams_every_format(live_server, fmt):
    client = openai.AsyncOpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)
    chunks = []
    async with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="joe", input=TEXT, response_format=fmt
    ) as response:
        async for chunk in response.iter_bytes():
            chunks.append(chunk)
    await client.close()
    assert 3.0 < seconds_of(b"".join(chunks)) < 15.0


async def test_official_openai_client_errors_are_typed(live_server):
    client = openai.AsyncOpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as excinfo:
        await client.audio.speech.create(model="tts-1", voice="nobody", input=TEXT)
    assert excinfo.value.body["param"] == "voice"
    with pytest.raises(openai.BadRequestError) as excinfo:
        await client.audio.speech.create(model="tts-1", voice="joe", input=TEXT, speed=9)
    assert excinfo.value.body["param"] == "speed"
    await client.close()


def test_pcm_via_openai_client_and_health_endpoints(live_server):
    client = openai.OpenAI(base_url=f"{live_server}/v1", api_key="unused", max_retries=0)
    pcm = client.audio.speech.create(model="tts-1", voice="joe", input="One two three.", response_format="pcm").content
    assert len(pcm) % 2 == 0 and 0.5 < len(pcm) / 2 / 24_000 < 5
    assert httpx.get(f"{live_server}/health").json() == {"status": "ok"}
    assert httpx.get(f"{live_server}/ready").json()["status"] == "ready"
    assert "tts_time_to_first_byte_seconds_bucket" in httpx.get(f"{live_server}/metrics").text
