"""`POST /v1/audio/speech`, OpenAI-compatible, streaming by default."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from pydantic import BaseModel, ConfigDict

from tts.app.api.deps import Runtime, RuntimeDep
from tts.app.api.errors import APIError
from tts.app.audio.encode import CONTENT_TYPES, RESPONSE_FORMATS
from tts.app.backends.base import SegmentRequest
from tts.app.gate import QueueFull
from tts.app.speech import Measured, SpeechJob, encoded_stream, sse_stream, whole_file
from tts.app.text import split_for_speech
from tts.app.voices import VoiceError

log = logging.getLogger(__name__)
router = APIRouter()

T = TypeVar("T")
DISCONNECT_POLL_S = 0.2
SPEED_MIN, SPEED_MAX = 0.25, 4.0
# Chatterbox knob ranges (its own demo's sliders).
KNOB_RANGES = {"exaggeration": (0.0, 2.0), "cfg_weight": (0.0, 1.0), "temperature": (0.05, 5.0)}


class VoiceId(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str


class SpeechRequest(BaseModel):
    """OpenAI's body, plus Chatterbox knobs and `stream` as optional extras."""

    model_config = ConfigDict(extra="forbid")

    model: str
    input: str
    voice: str | VoiceId
    response_format: str = "mp3"
    speed: float = 1.0
    instructions: str | None = None
    stream_format: Literal["audio", "sse"] = "audio"
    # Extensions (not in OpenAI's API):
    exaggeration: float | None = None
    cfg_weight: float | None = None
    temperature: float | None = None
    language: str | None = None
    stream: bool = True  # False: synthesize everything, answer with Content-Length


def _bad(message: str, param: str, code: str = "invalid_value") -> APIError:
    return APIError(400, message, param=param, code=code)


def build_job(body: SpeechRequest, runtime: Runtime, request_id: str) -> SpeechJob:
    settings, backend = runtime.settings, runtime.backend
    if body.model not in settings.model_names:
        raise _bad(
            f"Unknown model '{body.model}'. This server accepts: {', '.join(settings.model_names)}.",
            "model",
            "model_not_found",
        )
    text = body.input.strip()
    if not text:
        raise _bad("'input' is empty; give the text to speak.", "input")
    if len(body.input) > settings.max_input_chars:
        raise _bad(
            f"'input' is {len(body.input)} characters; the limit is {settings.max_input_chars}. Split the text into several requests.",
            "input",
            "string_above_max_length",
        )
    if body.response_format not in RESPONSE_FORMATS:
        raise _bad(
            f"Unknown response_format '{body.response_format}'. Use one of: {', '.join(RESPONSE_FORMATS)}.",
            "response_format",
        )
    if not SPEED_MIN <= body.speed <= SPEED_MAX:
        raise _bad(f"'speed' must be between {SPEED_MIN} and {SPEED_MAX}; got {body.speed}.", "speed")
    if body.instructions and body.instructions.strip():
        raise _bad(
            f"The {backend.name} backend cannot follow 'instructions'; leave it out.",
            "instructions",
            "unsupported_parameter",
        )
    knobs: dict[str, Any] = {}
    for name, (low, high) in KNOB_RANGES.items():
        value = getattr(body, name)
        if value is None:
            continue
        if backend.name != "chatterbox":
            raise _bad(
                f"'{name}' is a Chatterbox option; the {backend.name} backend does not support it.",
                name,
                "unsupported_parameter",
            )
        if not low <= value <= high:
            raise _bad(f"'{name}' must be between {low} and {high}; got {value}.", name)
        knobs[name] = value
    language = body.language.lower() if body.language else None
    if language is not None and (backend.languages is None or language not in backend.languages):
        supported = ", ".join(sorted(backend.languages or ())) or "none"
        raise _bad(
            f"Language '{body.language}' is not supported by the {backend.name} backend (supported: {supported}).",
            "language",
        )
    voice_name = body.voice.id if isinstance(body.voice, VoiceId) else body.voice
    try:
        voice = runtime.voices.resolve(voice_name)
    except VoiceError as exc:
        raise APIError(exc.status, exc.message, param=exc.param, code="voice_not_found") from None
    segments = split_for_speech(
        text, first_max_chars=settings.first_segment_max_chars, max_chars=settings.segment_max_chars
    )
    template = SegmentRequest(text="", voice=voice, speed=body.speed, language=language, request_id=request_id, **knobs)
    output_rate = settings.output_sample_rate
    return SpeechJob(
        segments=segments, template=template, response_format=body.response_format, output_rate=output_rate
    )


async def _guarded(runtime: Runtime, body: SpeechRequest, job: SpeechJob, started: float) -> AsyncIterator[bytes]:
    """The response body: waits for a slot, streams, records the outcome whatever happens."""
    metrics = runtime.metrics
    status = "ok"
    try:
        async with runtime.gate.slot():
            measured = Measured(metrics, started, job.output_rate)
            chunks = encoded_stream(runtime.backend, job, measured)
            if body.stream_format == "sse":
                chunks = sse_stream(chunks, body.input)
            async for data in chunks:
                yield data
    except GeneratorExit:
        status = "cancelled"
        metrics.cancelled.inc()
        raise
    except BaseException as exc:
        # CancelledError: Starlette cancels the body when the client disconnects.
        status = "cancelled" if type(exc).__name__ == "CancelledError" else "error"
        if status == "cancelled":
            metrics.cancelled.inc()
        else:
            metrics.errors.labels(type="synthesis").inc()
            log.exception("synthesis failed (request %s)", job.template.request_id)
        raise
    finally:
        metrics.requests.labels(response_format=job.response_format, status=status).inc()


class CallerLeft(Exception):
    """The client hung up before the first byte (queued, or synthesizing the first segment)."""


async def unless_caller_leaves(request: Request, awaitable: Awaitable[T]) -> T:
    """Await `awaitable`, cancelling it if the client disconnects meanwhile.

    Starlette cancels a streaming body when the caller leaves, but not the handler itself:
    without this, a queued request or a whole-file synthesis would run on for nobody.
    """
    task = asyncio.ensure_future(awaitable)
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=DISCONNECT_POLL_S)
            if done:
                return task.result()
            if await request.is_disconnected():
                raise CallerLeft
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task


@router.post("/v1/audio/speech", response_model=None)
async def create_speech(body: SpeechRequest, runtime: RuntimeDep, request: Request) -> Response:
    started = time.perf_counter()
    request_id = f"tts-{uuid.uuid4().hex[:16]}"
    metrics = runtime.metrics
    try:
        job = build_job(body, runtime, request_id)
        if runtime.state != "ready":
            raise APIError(
                503, "The speech model is still loading; retry shortly (GET /ready).", headers={"Retry-After": "5"}
            )
        try:
            runtime.gate.admit()
        except QueueFull:
            metrics.rejected.inc()
            raise APIError(
                429,
                "The server is at capacity; retry after the time in Retry-After.",
                code="queue_full",
                headers={"Retry-After": str(runtime.gate.retry_after_s())},
            ) from None
    except APIError as exc:
        metrics.errors.labels(type=str(exc.status)).inc()
        metrics.requests.labels(response_format=body.response_format, status=str(exc.status)).inc()
        raise

    headers = {"x-request-id": request_id}
    if not body.stream and body.stream_format == "audio":

        async def synthesize_whole() -> bytes:
            async with runtime.gate.slot():
                return await whole_file(runtime.backend, job, Measured(metrics, started, job.output_rate))

        try:
            data = await unless_caller_leaves(request, synthesize_whole())
        except CallerLeft:
            metrics.cancelled.inc()
            metrics.requests.labels(response_format=job.response_format, status="cancelled").inc()
            return Response(status_code=499)  # nobody reads it; nginx's "client closed request"
        except Exception:
            metrics.errors.labels(type="synthesis").inc()
            metrics.requests.labels(response_format=job.response_format, status="error").inc()
            log.exception("synthesis failed (request %s)", request_id)
            raise APIError(500, "Speech synthesis failed; see the server logs.", code="synthesis_failed") from None
        metrics.requests.labels(response_format=job.response_format, status="ok").inc()
        return Response(data, media_type=CONTENT_TYPES[job.response_format], headers=headers)

    body_iter = _guarded(runtime, body, job, started)
    # Produce the first chunk before answering, so a failing model gives a clean 500
    # envelope instead of a 200 whose body stops short.
    try:
        first = await unless_caller_leaves(request, anext(body_iter))
    except StopAsyncIteration:
        first = b""
    except CallerLeft:
        return Response(status_code=499)  # _guarded counted the cancellation
    except Exception:
        raise APIError(500, "Speech synthesis failed; see the server logs.", code="synthesis_failed") from None

    async def body_with_first() -> AsyncIterator[bytes]:
        try:
            if first:
                yield first
            async for data in body_iter:
                yield data
        finally:
            await body_iter.aclose()

    media_type = "text/event-stream" if body.stream_format == "sse" else CONTENT_TYPES[job.response_format]
    return StreamingResponse(body_with_first(), media_type=media_type, headers=headers)
