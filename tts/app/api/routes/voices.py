"""The voice library: list, upload a reference clip (Chatterbox cloning), delete."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from tts.app.api.deps import RuntimeDep
from tts.app.api.errors import APIError
from tts.app.backends.base import Voice
from tts.app.voices import VoiceError

router = APIRouter()

# Multipart framing on top of the clip itself.
_FORM_OVERHEAD = 64 * 1024


def voice_object(voice: Voice) -> dict:
    return {
        "id": voice.name,
        "object": "audio.voice",
        "name": voice.name,
        "type": "builtin" if voice.builtin else "cloned",
        "backend": voice.backend,
        "language": voice.language,
        "description": voice.description,
    }


def _as_api_error(exc: VoiceError) -> APIError:
    return APIError(exc.status, exc.message, param=exc.param)


@router.get("/v1/audio/voices")
async def list_voices(runtime: RuntimeDep) -> dict:
    return {"object": "list", "data": [voice_object(v) for v in runtime.voices.all()]}


async def _read_limited(upload: UploadFile, limit: int) -> bytes:
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise APIError(413, f"The clip is larger than {limit} bytes.", param="file", code="file_too_large")
    return data


@router.post("/v1/audio/voices", status_code=201)
async def create_voice(request: Request, runtime: RuntimeDep) -> JSONResponse:
    """multipart/form-data: `name`, `file` (or OpenAI's `audio_sample`), optional `language`, `description`."""
    if not runtime.backend.supports_cloning:
        # Stored, the clip would only ever answer "cannot clone": refuse it before reading it.
        raise APIError(
            400,
            f"The {runtime.backend.name} backend cannot clone voices; upload reference clips to a server "
            "running TTS_BACKEND=chatterbox.",
            param="file",
            code="cloning_not_supported",
        )
    limit = runtime.voices.rules.max_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + _FORM_OVERHEAD:
        raise APIError(413, f"The upload is larger than {limit} bytes.", param="file", code="file_too_large")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise APIError(400, "Send the clip as multipart/form-data with fields 'name' and 'file'.", param="file")
    try:
        form = await request.form(max_files=1, max_fields=8, max_part_size=limit + 1)
    except (MultiPartException, HTTPException) as exc:
        # Starlette's parser raises MultiPartException, which Request.form() turns into a plain
        # 400. Only a part over max_part_size is too large; too many files or fields, or broken
        # framing, is a malformed request (its messages name the limit, never the input).
        message = exc.message if isinstance(exc, MultiPartException) else str(exc.detail)
        if "exceeded maximum size" in message:
            raise APIError(
                413, f"The upload is larger than {limit} bytes.", param="file", code="file_too_large"
            ) from None
        if message.startswith("Too many files"):
            raise APIError(400, "Send one file per upload, in the 'file' field.", param="file") from None
        raise APIError(400, f"The multipart form is malformed: {message}", param="file") from None
    upload = form.get("file") or form.get("audio_sample")
    if not isinstance(upload, UploadFile):
        raise APIError(400, "Missing the reference clip: send it in the 'file' field.", param="file")
    name = form.get("name")
    if not isinstance(name, str) or not name:
        raise APIError(400, "Missing the voice 'name'.", param="name")
    language = form.get("language")
    description = form.get("description")
    if language is not None and (not isinstance(language, str) or len(language) > 16):
        raise APIError(400, "'language' must be a short language code such as 'en'.", param="language")
    data = await _read_limited(upload, limit)
    try:
        voice = await asyncio.to_thread(
            runtime.voices.add,
            name,
            data,
            language=language or None,
            description=description[:200] if isinstance(description, str) else "",
        )
    except VoiceError as exc:
        raise _as_api_error(exc) from None
    return JSONResponse(voice_object(voice), status_code=201)


@router.delete("/v1/audio/voices/{voice_id}")
async def delete_voice(voice_id: str, runtime: RuntimeDep) -> dict:
    try:
        voice = await asyncio.to_thread(runtime.voices.delete, voice_id)
    except VoiceError as exc:
        raise _as_api_error(exc) from None
    return {"id": voice.name, "object": "audio.voice", "deleted": True}
