"""The agent's Riva STT against real gRPC: a Riva that is down, or that refuses the model, ends the
stream with an error the AgentSession sees (the plugin alone logged it and went deaf)."""

from __future__ import annotations

import asyncio
from concurrent import futures

import grpc
import pytest
from livekit import rtc
from livekit.agents import APIConnectionError, APIConnectOptions, APIStatusError
from riva.client.proto import riva_asr_pb2_grpc

from agent.pipeline import build_stt
from agent.riva_stt import RivaSTT
from agent.settings import load_settings
from tests.conftest import free_port

pytestmark = pytest.mark.timeout(60)


class RivaRefusingTheModel(riva_asr_pb2_grpc.RivaSpeechRecognitionServicer):
    """Riva's answer to a model it does not serve (the model repository holds another one)."""

    def __init__(self) -> None:
        self.models: list[str] = []

    def StreamingRecognize(self, request_iterator, context: grpc.ServicerContext):  # noqa: ANN001, ANN201
        first = next(request_iterator)
        self.models.append(first.streaming_config.config.model)
        context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"Error: Model {first.streaming_config.config.model} is not available on server",
        )


def _frame() -> rtc.AudioFrame:
    return rtc.AudioFrame(data=b"\x00\x00" * 160, sample_rate=8000, num_channels=1, samples_per_channel=160)


async def _recognize(stt: RivaSTT) -> None:
    stream = stt.stream(conn_options=APIConnectOptions(max_retry=0, timeout=5))
    for _ in range(50):
        stream.push_frame(_frame())

    async def feed() -> None:
        while True:  # a live call keeps sending audio: the stream must not wait for it to end
            await asyncio.sleep(0.02)
            try:
                stream.push_frame(_frame())
            except RuntimeError:
                return

    feeder = asyncio.create_task(feed())
    try:
        async for _ev in stream:
            pass
    finally:
        feeder.cancel()
        await stream.aclose()


def _stt(server: str) -> RivaSTT:
    settings = load_settings(riva_server=server, stt_provider="riva")
    stt = build_stt(settings)
    assert isinstance(stt, RivaSTT)
    return stt


async def test_riva_down_ends_the_stream_with_a_connection_error() -> None:
    errors = []
    stt = _stt(f"127.0.0.1:{free_port()}")  # nothing listens there
    stt.on("error", errors.append)
    with pytest.raises(APIConnectionError):
        await asyncio.wait_for(_recognize(stt), 30)
    assert errors and errors[-1].recoverable is False


async def test_a_model_riva_does_not_serve_is_an_unretried_status_error() -> None:
    servicer = RivaRefusingTheModel()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    riva_asr_pb2_grpc.add_RivaSpeechRecognitionServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        stt = _stt(f"127.0.0.1:{port}")
        with pytest.raises(APIStatusError) as raised:
            await asyncio.wait_for(_recognize(stt), 30)
        assert raised.value.retryable is False
        assert "INVALID_ARGUMENT" in str(raised.value)
        assert "not available" not in str(raised.value)  # Riva's details stay out of logs and reports
        from callcenter import riva as riva_models

        assert servicer.models == [riva_models.STREAMING_MODEL]
    finally:
        server.stop(None)
