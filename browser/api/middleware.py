"""Headers on every response: the security headers (a strict Content-Security-Policy: only this
app's own scripts and styles, audio from the bucket) and Server-Timing."""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from browser.core.config import BrowserSettings


def security_headers(settings: BrowserSettings) -> dict[str, str]:
    # Only this app's own scripts and styles; audio from the bucket (signed URL) or the emulator.
    media = (
        settings.storage_emulator_host.rstrip("/")
        if settings.storage_emulator_host
        else "https://storage.googleapis.com"
    )
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; media-src 'self' {media}; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        ),
        # Signed recording URLs must not leak through Referer.
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


class ResponseHeaders:
    """Adds the security headers and Server-Timing (time to the response's start; read by
    bench/browser_pages.py and browser dev tools) to every response.

    Plain ASGI rather than @app.middleware("http"): Starlette's BaseHTTPMiddleware ends a
    streamed body cleanly when the app raises midway, which turned a failed CSV export into a
    complete-looking short file."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                timing = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
                names = {name for name, _ in self.headers} | {b"server-timing"}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *self.headers, (b"server-timing", timing.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
