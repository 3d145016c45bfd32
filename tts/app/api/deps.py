"""What the routes share: the loaded backend, the voice library, the gate, the metrics."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from tts.app.backends.base import SpeechBackend
from tts.app.core.config import Settings
from tts.app.gate import SynthesisGate
from tts.app.metrics import SpeechMetrics
from tts.app.voices import VoiceLibrary


@dataclass
class Runtime:
    settings: Settings
    backend: SpeechBackend
    voices: VoiceLibrary
    gate: SynthesisGate
    metrics: SpeechMetrics
    load_error: str | None = None  # our own message when loading failed (never a traceback)
    state: str = field(default="loading")  # loading | ready | failed


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
