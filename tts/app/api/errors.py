"""Errors in OpenAI's envelope: {"error": {"message", "type", "param", "code"}}.

Nothing from an exception's text or traceback reaches a response: unexpected failures are
logged server-side and answered with a fixed message.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

_TYPES = {
    400: "invalid_request_error",
    404: "not_found_error",
    405: "invalid_request_error",
    409: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "service_unavailable_error",
}


class APIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = headers or {}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict:
    return {"error": {"message": message, "type": _TYPES.get(status, "server_error"), "param": param, "code": code}}


def error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(
        error_body(exc.status, exc.message, exc.param, exc.code), status_code=exc.status, headers=exc.headers
    )


def _validation_message(err: dict) -> tuple[str | None, str]:
    loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path")]
    kind = err.get("type", "")
    if kind == "json_invalid":
        return "body", "The request body is not valid JSON."
    if kind == "extra_forbidden":
        return loc[-1] if loc else None, f"Unrecognized request argument supplied: {loc[-1] if loc else '?'}"
    if kind == "missing":
        return (loc[0] if loc else None), f"Missing required parameter: '{loc[0] if loc else '?'}'."
    if kind in ("model_attributes_type", "dict_type"):
        return "body", "The request body must be a JSON object."
    param = ".".join(loc) if loc else "body"
    # pydantic's msg describes the expected type; it never contains the input itself.
    return param, f"Invalid value for '{param}': {err.get('msg', 'invalid value')}."


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        param, message = _validation_message(errors[0]) if errors else ("body", "Invalid request.")
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:  # malformed bodies count as errors too
            runtime.metrics.errors.labels(type="400").inc()
        return JSONResponse(error_body(400, message, param, "invalid_value"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "Request failed."
        return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body(500, "The server failed to process the request; see its logs."), status_code=500)
