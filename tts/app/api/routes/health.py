"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from tts.app.api.deps import RuntimeDep

router = APIRouter()


@router.get("/health")
async def health() -> dict:
    """The process answers; says nothing about the model (that is /ready)."""
    return {"status": "ok"}


@router.get("/ready")
async def ready(runtime: RuntimeDep) -> JSONResponse:
    """200 only once the model is loaded and a warm-up synthesis produced audio."""
    body = {"status": runtime.state, "backend": runtime.backend.name}
    if runtime.state == "ready":
        return JSONResponse(body)
    if runtime.load_error:
        body["error"] = runtime.load_error
    return JSONResponse(body, status_code=503)


@router.get("/metrics")
async def metrics(runtime: RuntimeDep) -> Response:
    return Response(generate_latest(runtime.metrics.registry), media_type=CONTENT_TYPE_LATEST)
