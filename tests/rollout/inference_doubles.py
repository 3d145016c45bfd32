"""Protocol-level doubles of the GPU services, for rollout tests only (no GPU runs here).

* ``RivaDouble``: a gRPC server speaking Riva's real protos (``riva.client.proto``): the
  standard health service and ``RivaSpeechRecognition/Recognize``, which checks the audio
  config and answers with a transcript a test chooses.
* ``OpenAIDouble``: an HTTP server with vLLM's ``/v1/models`` and ``/v1/completions`` and
  the TTS server's ``/ready`` and ``/v1/audio/speech`` (a real WAV), in OpenAI's formats.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import wave
from concurrent import futures
from typing import Any

import grpc
from aiohttp import web
from riva.client.proto import health_pb2, health_pb2_grpc, riva_asr_pb2, riva_asr_pb2_grpc, riva_audio_pb2

from callcenter import riva as riva_models


class RivaDouble(health_pb2_grpc.HealthServicer, riva_asr_pb2_grpc.RivaSpeechRecognitionServicer):
    def __init__(self) -> None:
        self.serving = True
        self.transcript = "hello thank you for calling"
        # what riva-deploy put in the model repository (served names, as GetRivaSpeechRecognitionConfig lists them)
        self.models = [m.name for m in riva_models.DEPLOYED]
        self.requests: list[riva_asr_pb2.RecognizeRequest] = []
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        health_pb2_grpc.add_HealthServicer_to_server(self, self._server)
        riva_asr_pb2_grpc.add_RivaSpeechRecognitionServicer_to_server(self, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")

    @property
    def uri(self) -> str:
        return f"127.0.0.1:{self.port}"

    def __enter__(self) -> RivaDouble:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop(grace=None).wait(5)

    def Check(self, request: health_pb2.HealthCheckRequest, context: grpc.ServicerContext) -> health_pb2.HealthCheckResponse:
        status = health_pb2.HealthCheckResponse.SERVING if self.serving else health_pb2.HealthCheckResponse.NOT_SERVING
        return health_pb2.HealthCheckResponse(status=status)

    def GetRivaSpeechRecognitionConfig(
        self, request: riva_asr_pb2.RivaSpeechRecognitionConfigRequest, context: grpc.ServicerContext
    ) -> riva_asr_pb2.RivaSpeechRecognitionConfigResponse:
        Config = riva_asr_pb2.RivaSpeechRecognitionConfigResponse.Config
        return riva_asr_pb2.RivaSpeechRecognitionConfigResponse(
            model_config=[Config(model_name=m, parameters={"language_code": "en-US"}) for m in self.models]
        )

    def Recognize(self, request: riva_asr_pb2.RecognizeRequest, context: grpc.ServicerContext) -> riva_asr_pb2.RecognizeResponse:
        self.requests.append(request)
        config = request.config
        if config.model and config.model not in self.models:  # Riva's answer to a model it does not serve
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"Error: Model {config.model} is not available on server")
        if config.encoding != riva_audio_pb2.AudioEncoding.LINEAR_PCM or config.sample_rate_hertz not in (8000, 16000):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unsupported audio config")
        if len(request.audio) < 2 * config.sample_rate_hertz // 2:  # under half a second of 16-bit audio
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "audio too short")
        seconds = len(request.audio) / 2 / config.sample_rate_hertz
        alternative = riva_asr_pb2.SpeechRecognitionAlternative(transcript=self.transcript, confidence=0.9)
        result = riva_asr_pb2.SpeechRecognitionResult(alternatives=[alternative], audio_processed=seconds)
        return riva_asr_pb2.RecognizeResponse(results=[result] if self.transcript else [])


def _wav(seconds: float = 0.2, rate: int = 24_000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\x01\x00" * int(seconds * rate))
    return buf.getvalue()


class OpenAIDouble:
    def __init__(self, model: str = "meta-llama/Llama-3.1-8B-Instruct") -> None:
        self.model = model
        self.tts_ready = True
        self.requests: list[tuple[str, Any]] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-double", daemon=True)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> OpenAIDouble:
        self._thread.start()
        app = web.Application()
        app.router.add_get("/v1/models", self._models)
        app.router.add_post("/v1/completions", self._completions)
        app.router.add_get("/ready", self._ready)
        app.router.add_post("/v1/audio/speech", self._speech)

        async def start() -> web.AppRunner:
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            return runner

        self._runner = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._runner is not None
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    async def _models(self, request: web.Request) -> web.Response:
        self.requests.append(("models", None))
        return web.json_response(
            {"object": "list", "data": [{"id": self.model, "object": "model", "created": 0, "owned_by": "vllm"}]}
        )

    async def _completions(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("completions", body))
        if body.get("model") != self.model:
            return web.json_response(
                {"error": {"message": f"model {body.get('model')} does not exist", "type": "NotFoundError", "param": "model", "code": 404}},
                status=404,
            )
        return web.json_response(
            {
                "id": "cmpl-1",
                "object": "text_completion",
                "created": 0,
                "model": self.model,
                "choices": [{"index": 0, "text": " there", "finish_reason": "length", "logprobs": None}],
                "usage": {"prompt_tokens": 2, "completion_tokens": body.get("max_tokens", 16), "total_tokens": 3},
            }
        )

    async def _ready(self, request: web.Request) -> web.Response:
        self.requests.append(("ready", None))
        if self.tts_ready:
            return web.json_response({"status": "ready", "backend": "double"})
        return web.json_response({"status": "loading", "backend": "double"}, status=503)

    async def _speech(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append(("speech", body))
        return web.Response(body=_wav(), content_type="audio/wav")
