"""Fast Chatterbox engine (TTS_CHATTERBOX_ENGINE=fast): continuous batching of T3 decoding
across requests, CUDA-graph decode steps, bf16 T3, chunked and batched S3Gen vocoding, and a
start-up capacity measurement that sets the server's admission limit.

Imports of torch/chatterbox are deferred so the server module loads without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tts.app.core.config import Settings


def build_engine(model: Any, settings: Settings) -> Any:
    """The fast engine on a loaded model, its knobs from the server's TTS_CHATTERBOX_FAST_* settings."""
    from tts.app.backends.chatterbox_fast.engine import FastEngineConfig
    from tts.app.backends.chatterbox_fast.engine import build_engine as _build

    return _build(model, FastEngineConfig.from_settings(settings))
