"""Errors are pages with a message (400 malformed filter, 401 not signed in, 404 unknown call or
page); anything unexpected is a 500 page with a reference to the log line, never a stack trace.
A ``.csv`` URL gets the same as plain text."""

from __future__ import annotations

import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from browser.api.templating import page
from browser.auth import NotSignedIn
from browser.filters import BadFilter

log = logging.getLogger("browser")


class UnknownCall(Exception):
    def __init__(self, call_id: str, why: str) -> None:
        super().__init__(why)
        self.call_id = call_id


def error_response(request: Request, status: int, heading: str, message: str, headers: dict | None = None) -> Response:
    if request.url.path.endswith(".csv"):
        return PlainTextResponse(f"{status} {heading}: {message}\n", status_code=status, headers=headers)
    response = page(request, "error.html", status=status, code=status, heading=heading, message=message)
    response.headers.update(headers or {})
    return response


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return error_response(request, 401, "Sign in required", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(BadFilter)
    async def _bad_filter(request: Request, exc: BadFilter) -> Response:
        return error_response(request, 400, "Bad request", str(exc))

    @app.exception_handler(UnknownCall)
    async def _unknown_call(request: Request, exc: UnknownCall) -> Response:
        return error_response(request, 404, "Call not found", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return error_response(request, 404, "Not found", f"there is no page at {request.url.path}")
        return error_response(request, exc.status_code, "Request refused", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error (ref %s) on %s", ref, request.url.path)
        return error_response(request, 500, "Something went wrong", f"The error is logged with reference {ref}.")
