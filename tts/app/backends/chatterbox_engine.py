"""What a Chatterbox engine runs and offers: the contract between the backend (chatterbox.py,
which maps requests and picks an engine) and the engines (its ReferenceEngine, chatterbox_fast/).

Engines depend on this module, never on chatterbox.py, so choosing an engine there imports
nothing that imports it back.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


@dataclass(frozen=True)
class ChatterboxCall:
    """What one `generate` call needs: the mapped request, independent of the engine."""

    text: str
    audio_prompt_path: str | None
    kwargs: dict[str, Any]  # keyword arguments for model.generate besides text/audio_prompt_path
    request_id: str = ""


class ChatterboxEngine(Protocol):
    """Runs mapped calls on a loaded model; blocking, called from worker threads.

    ``stream`` yields float32 mono numpy chunks at ``sample_rate`` and must return early
    once ``cancelled`` is set. ``max_parallel`` > 1 tells the server it may call
    ``stream`` from that many threads at once (a batching engine merges them).
    """

    sample_rate: int
    max_parallel: int

    def stream(self, call: ChatterboxCall, cancelled: threading.Event) -> Iterator[np.ndarray]: ...
