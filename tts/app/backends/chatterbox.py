"""Chatterbox (Resemble AI) backend: the production voice on the L4 GPU.

`chatterbox-tts` is installed only in the deployable image (tts/requirements.txt), never
in the dev environment, so every import of it is lazy. Three variants:

- ``english``      -> ``chatterbox.tts.ChatterboxTTS``
- ``multilingual`` -> ``chatterbox.mtl_tts.ChatterboxMultilingualTTS`` (23 languages, `language`)
- ``turbo``        -> ``chatterbox.tts_turbo.ChatterboxTurboTTS``

Weights come from ``from_local(checkpoint_dir)`` when a directory is configured (baked
into the image or mounted), else ``from_pretrained`` (Hugging Face, needs network).

The model call itself sits behind :class:`ChatterboxEngine` so a faster decoder
(batched / CUDA graphs, ``tts/app/backends/chatterbox_fast/``) can replace the
reference ``model.generate`` without touching request mapping or the server.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from tts.app.backends.base import BackendNotReady, SegmentRequest, SpeechBackend, Voice, iterate_in_thread
from tts.app.backends.chatterbox_engine import ChatterboxCall, ChatterboxEngine
from tts.app.core.config import Settings

log = logging.getLogger(__name__)

Variant = Literal["english", "multilingual", "turbo"]
TURBO_MIN_CLIP_SECONDS = 5.1

# variant -> (module, class)
MODEL_CLASSES: dict[str, tuple[str, str]] = {
    "english": ("chatterbox.tts", "ChatterboxTTS"),
    "multilingual": ("chatterbox.mtl_tts", "ChatterboxMultilingualTTS"),
    "turbo": ("chatterbox.tts_turbo", "ChatterboxTurboTTS"),
}

# The multilingual model's language ids (chatterbox.mtl_tts.SUPPORTED_LANGUAGES); kept here so
# requests are validated before the model is touched, and checked against the model at load.
MULTILINGUAL_LANGUAGES = frozenset(
    [
        "ar",
        "da",
        "de",
        "el",
        "en",
        "es",
        "fi",
        "fr",
        "he",
        "hi",
        "it",
        "ja",
        "ko",
        "ms",
        "nl",
        "no",
        "pl",
        "pt",
        "ru",
        "sv",
        "sw",
        "tr",
        "zh",
    ]
)

DEFAULT_VOICE = "default"  # the conditionals shipped with the checkpoint (conds.pt)


def build_call(request: SegmentRequest, variant: Variant) -> ChatterboxCall:
    """Map an API segment request onto the variant's `generate` keyword arguments.

    Only knobs the caller set are passed, so the model's own defaults stay in force
    (they differ per variant: e.g. repetition_penalty 1.2 vs 2.0 for multilingual).
    """
    kwargs: dict[str, Any] = {}
    if request.exaggeration is not None:
        kwargs["exaggeration"] = request.exaggeration
    if request.cfg_weight is not None:
        kwargs["cfg_weight"] = request.cfg_weight
    if request.temperature is not None:
        kwargs["temperature"] = request.temperature
    if variant == "multilingual":
        language = request.language or request.voice.language or "en"
        kwargs["language_id"] = language.lower()
    elif request.language and request.language.lower() not in ("en", "en-us", "en-gb"):
        # Validated by the API layer already; this guards direct callers.
        raise ValueError(f"the {variant} Chatterbox model speaks English only; got language {request.language!r}")
    clip = request.voice.reference_clip
    return ChatterboxCall(
        text=request.text,
        audio_prompt_path=str(clip) if clip is not None else None,
        kwargs=kwargs,
        request_id=request.request_id,
    )


class ReferenceEngine:
    """The upstream `model.generate`, one call at a time (it mutates `model.conds`).

    Conditionals per reference clip are computed once (`prepare_conditionals`) and cached,
    so a cloned voice costs its embedding only on first use.
    """

    max_parallel = 1

    def __init__(self, model: Any, dtype: str = "float32") -> None:
        self.model = model
        self.sample_rate = int(model.sr)
        # Half precision by autocast, not by casting weights: upstream builds its conditioning
        # tensors in float32, and a bf16/fp16 T3 then fails with a dtype mismatch in T3CondEnc.
        self.dtype = dtype
        self._lock = threading.Lock()
        self._default_conds = getattr(model, "conds", None)
        self._conds_by_clip: dict[str, Any] = {}

    def _select_voice(self, call: ChatterboxCall) -> None:
        if call.audio_prompt_path is None:
            if self._default_conds is None:
                raise BackendNotReady("the Chatterbox checkpoint has no built-in voice (conds.pt); use a cloned voice")
            self.model.conds = self._default_conds
            return
        conds = self._conds_by_clip.get(call.audio_prompt_path)
        if conds is None:
            exaggeration = call.kwargs.get("exaggeration", 0.5)
            self.model.prepare_conditionals(call.audio_prompt_path, exaggeration=exaggeration)
            conds = self.model.conds
            self._conds_by_clip[call.audio_prompt_path] = conds
        self.model.conds = conds

    def forget_clip(self, path: str) -> None:
        self._conds_by_clip.pop(path, None)

    def stream(self, call: ChatterboxCall, cancelled: threading.Event) -> Iterator[np.ndarray]:
        with self._lock:
            if cancelled.is_set():
                return
            self._select_voice(call)
            with self._precision():
                wav = self.model.generate(call.text, **call.kwargs)
        yield _to_mono_float32(wav)

    def _precision(self):
        if self.dtype == "float32":
            return contextlib.nullcontext()
        import torch

        device_type = str(getattr(self.model, "device", "cuda")).split(":")[0]
        return torch.autocast(device_type=device_type, dtype=getattr(torch, self.dtype))


def _to_mono_float32(wav: Any) -> np.ndarray:
    if hasattr(wav, "detach"):  # torch tensor, shape (1, n)
        wav = wav.detach().float().cpu().numpy()
    audio = np.asarray(wav, dtype=np.float32)
    if audio.ndim == 1:
        return audio
    if audio.shape[0] == 1:
        return audio.reshape(-1)
    return audio.mean(axis=0)


def resolve_device(device: str) -> str:
    """'auto' picks cuda, then mps, then cpu."""
    if device != "auto":
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_model(variant: Variant, device: str, checkpoint_dir: Path | None) -> Any:
    """Load a Chatterbox model the way upstream does (weights stay float32; see ReferenceEngine)."""
    module_name, class_name = MODEL_CLASSES[variant]
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendNotReady(
            "chatterbox-tts is not installed in this environment; install tts/requirements.txt "
            "(the GPU image) or set TTS_BACKEND=piper for the local voice"
        ) from exc
    model_cls = getattr(module, class_name)
    if checkpoint_dir is not None:
        if not Path(checkpoint_dir).is_dir():
            raise BackendNotReady(f"TTS_CHATTERBOX_CHECKPOINT_DIR={checkpoint_dir} is not a directory")
        return model_cls.from_local(str(checkpoint_dir), device=device)
    return model_cls.from_pretrained(device=device)


def load_engine(model: Any, engine: str, dtype: str = "float32", settings: Settings | None = None) -> ChatterboxEngine:
    """`reference` (upstream generate) or `fast` (the batched/CUDA-graph decoder, its knobs from
    ``settings``: the server's, else read from TTS_* now)."""
    if engine == "reference":
        return ReferenceEngine(model, dtype=dtype)
    if engine == "fast":
        from tts.app.backends import chatterbox_fast

        return chatterbox_fast.build_engine(model, settings if settings is not None else Settings())
    raise ValueError(f"TTS_CHATTERBOX_ENGINE must be 'reference' or 'fast', got {engine!r}")


class ChatterboxBackend(SpeechBackend):
    name = "chatterbox"
    native_speed = False  # Chatterbox has no rate control; the server time-stretches
    supports_cloning = True

    def __init__(
        self,
        *,
        variant: Variant = "english",
        device: str = "auto",
        dtype: str = "float32",
        checkpoint_dir: Path | None = None,
        engine: str = "reference",
        settings: Settings | None = None,
        model: Any = None,
    ) -> None:
        super().__init__()
        if variant not in MODEL_CLASSES:
            raise ValueError(f"TTS_CHATTERBOX_VARIANT must be one of {sorted(MODEL_CLASSES)}, got {variant!r}")
        self.variant: Variant = variant
        self.device = device
        self.dtype = dtype
        self.checkpoint_dir = checkpoint_dir
        self.engine_name = engine
        self.settings = settings  # the server's; the fast engine reads its TTS_CHATTERBOX_FAST_* knobs there
        self.model = model  # tests pass a model double; load() skips loading then
        self.engine: ChatterboxEngine | None = None
        self.languages = MULTILINGUAL_LANGUAGES if variant == "multilingual" else frozenset({"en"})
        # ChatterboxTurboTTS.prepare_conditionals asserts a clip longer than 5 s.
        self.min_clip_seconds = TURBO_MIN_CLIP_SECONDS if variant == "turbo" else 0.0

    def load(self) -> None:
        if self.model is None:
            device = resolve_device(self.device)
            log.info("loading Chatterbox %s on %s (%s)", self.variant, device, self.dtype)
            self.model = load_model(self.variant, device, self.checkpoint_dir)
        self.engine = load_engine(self.model, self.engine_name, self.dtype, self.settings)
        self.sample_rate = self.engine.sample_rate

    @property
    def max_parallel_segments(self) -> int:  # type: ignore[override]
        # Read when the server sizes its gate, after warm-up: a batching engine may measure
        # its capacity only then.
        return max(1, int(getattr(self.engine, "max_parallel", 1)))

    def register_metrics(self, registry) -> None:
        """Let the engine add its own gauges (batch size, capacity) to the server's registry."""
        register = getattr(self.engine, "register_metrics", None)
        if register is not None:
            register(registry)

    def close(self) -> None:
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()

    def voices(self) -> list[Voice]:
        if self.model is not None and getattr(self.model, "conds", None) is None:
            return []
        return [Voice(name=DEFAULT_VOICE, backend=self.name, description="Chatterbox built-in voice (conds.pt)")]

    async def warmup(self) -> None:
        if not self.voices():
            # No built-in voice: nothing to warm with until a clip is uploaded; the model loaded.
            self.ready = True
            return
        await super().warmup()

    def synthesize(self, request: SegmentRequest) -> AsyncIterator[np.ndarray]:
        if self.engine is None:
            raise BackendNotReady("Chatterbox model is not loaded yet")
        call = build_call(request, self.variant)
        engine = self.engine
        return iterate_in_thread(lambda cancelled: engine.stream(call, cancelled))

    def forget_voice(self, voice: Voice) -> None:
        """Drop cached conditionals when a cloned voice is deleted."""
        forget = getattr(self.engine, "forget_clip", None)
        if forget is not None and voice.reference_clip is not None:
            forget(str(voice.reference_clip))
