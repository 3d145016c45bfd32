"""Builds the speech server: `uvicorn tts.app.main:app` or `python -m tts.app`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from tts.app.api.deps import Runtime
from tts.app.api.errors import APIError, error_response, install_error_handlers
from tts.app.api.routes import health, speech, voices
from tts.app.backends.base import BackendNotReady, SpeechBackend
from tts.app.core.config import Settings
from tts.app.gate import SynthesisGate
from tts.app.metrics import SpeechMetrics
from tts.app.voices import BucketMirror, ClipRules, VoiceLibrary

log = logging.getLogger("tts")


def build_backend(settings: Settings) -> SpeechBackend:
    if settings.backend == "piper":
        from tts.app.backends.piper import PiperBackend

        return PiperBackend(
            model_path=settings.piper_model, voice_name=settings.piper_voice_name, threads=settings.piper_threads
        )
    if settings.backend == "espeak":
        from tts.app.backends.espeak import EspeakBackend

        return EspeakBackend(voice_names=settings.espeak_voices)
    from tts.app.backends.chatterbox import ChatterboxBackend

    return ChatterboxBackend(
        variant=settings.chatterbox_variant,
        device=settings.chatterbox_device,
        dtype=settings.chatterbox_dtype,
        checkpoint_dir=settings.chatterbox_checkpoint_dir,
        engine=settings.chatterbox_engine,
        settings=settings,
    )


async def load_and_warm(runtime: Runtime) -> None:
    """Load the model off the event loop, warm it, then open the gate (/ready turns 200)."""
    try:
        await asyncio.to_thread(runtime.backend.load)
        await runtime.backend.warmup()
        register_metrics = getattr(runtime.backend, "register_metrics", None)
        if register_metrics is not None:
            register_metrics(runtime.metrics.registry)
        concurrency = runtime.settings.max_concurrency or runtime.backend.max_parallel_segments
        runtime.gate = SynthesisGate(
            concurrency, runtime.settings.max_queue, runtime.metrics, runtime.settings.retry_after_s
        )
        await asyncio.to_thread(runtime.voices.open)
        runtime.state = "ready"
        log.info(
            "%s backend ready (%d concurrent, queue %d)", runtime.backend.name, concurrency, runtime.settings.max_queue
        )
    except BackendNotReady as exc:
        runtime.state, runtime.load_error = "failed", str(exc)
        log.error("speech backend failed to load: %s", exc)
    except Exception:
        runtime.state, runtime.load_error = "failed", "the speech backend failed to load; see the server logs"
        log.exception("speech backend failed to load")


@dataclass(frozen=True)
class BodyLimit:
    limit: int
    param: str
    message: str


class BodyLimits:
    """413 for a POST body over its route's limit, whether declared (Content-Length) or sent
    chunked: the body is read here, at most ``limit`` bytes, and handed on. Without it a chunked
    upload was spooled whole (200 MB seen) before the route could refuse it.

    Plain ASGI rather than @app.middleware("http"): Starlette's BaseHTTPMiddleware wraps
    `receive`, and the handler then never sees the client's disconnect.
    """

    def __init__(self, app: ASGIApp, limits: dict[str, BodyLimit]) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rule = self.limits.get(scope["path"]) if scope["type"] == "http" and scope["method"] == "POST" else None
        if rule is None:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > rule.limit:
            await self._refuse(rule, scope, receive, send)
            return
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before sending its body
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > rule.limit:
                await self._refuse(rule, scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, handed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal handed
            if not handed:
                handed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # then the disconnect, which streaming handlers watch for

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(rule: BodyLimit, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(APIError(413, rule.message, param=rule.param, code="body_too_large"))(scope, receive, send)


def create_app(settings: Settings | None = None, backend: SpeechBackend | None = None) -> FastAPI:
    settings = settings or Settings()
    backend = backend or build_backend(settings)
    metrics = SpeechMetrics()
    mirror = BucketMirror(settings.voices_bucket, settings.voices_bucket_prefix) if settings.voices_bucket else None
    library = VoiceLibrary(
        backend,
        settings.voices_dir,
        rules=ClipRules(
            max(settings.clip_min_seconds, backend.min_clip_seconds),
            settings.clip_max_seconds,
            settings.max_upload_bytes,
        ),
        aliases=settings.all_voice_aliases(),
        mirror=mirror,
    )
    runtime = Runtime(
        settings=settings,
        backend=backend,
        voices=library,
        gate=SynthesisGate(1, settings.max_queue, metrics, settings.retry_after_s),
        metrics=metrics,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # In the background: /health answers while a large model loads (startupProbe).
        loading = asyncio.create_task(load_and_warm(runtime))
        app.state.loading = loading
        try:
            yield
        finally:
            loading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loading
            backend.close()

    app = FastAPI(title="Call-center speech server", version="1.0", lifespan=lifespan)
    app.state.runtime = runtime
    # A speech body is a few KiB of JSON; refuse megabytes before parsing them.
    speech_limit = max(64 * 1024, settings.max_input_chars * 8)
    # The clip plus a little for the multipart framing and the short fields.
    upload_limit = settings.max_upload_bytes + 256 * 1024
    app.add_middleware(
        BodyLimits,
        limits={
            "/v1/audio/speech": BodyLimit(
                speech_limit, "input", f"The request body is larger than {speech_limit} bytes."
            ),
            "/v1/audio/voices": BodyLimit(
                upload_limit, "file", f"The clip is larger than {settings.max_upload_bytes} bytes."
            ),
        },
    )

    install_error_handlers(app)
    app.include_router(speech.router)
    app.include_router(voices.router)
    app.include_router(health.router)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn tts.app.main:app` builds the app on first access, not at import time.
    if name == "app":
        application = create_app()
        globals()["app"] = application
        return application
    raise AttributeError(name)
