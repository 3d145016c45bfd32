"""The fast Chatterbox engine: batched T3 decoding + chunked, batched S3Gen vocoding.

Implements ``tts.app.backends.chatterbox_engine.ChatterboxEngine``: ``stream(call, cancelled)`` is
called from many server threads at once; each call becomes a decode job that shares the GPU
with every other call, and yields audio window by window while its tokens are still coming.
"""

from __future__ import annotations

import itertools
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F

from tts.app.backends.chatterbox_fast.decoder import DecoderShape, T3BatchDecoder
from tts.app.backends.chatterbox_fast.scheduler import FINISHED, DecodeJob, DecodeScheduler
from tts.app.backends.chatterbox_fast.vocoder import BatchedVocoder, ChunkPlan, StreamStitcher, trim_reference

if TYPE_CHECKING:  # pydantic-settings is not in .venv-chatterbox, where the CPU checks run
    from tts.app.core.config import Settings

log = logging.getLogger(__name__)

SPEECH_VOCAB = 6561  # S3 tokens below this are speech; the rest are T3's control tokens
# An early window (FastEngineConfig.early_window_s) renders at least this many tokens past
# the last window (3 of them held back for the next): 5 tokens, 0.2 s of new audio.
EARLY_MIN_TOKENS = 8
TOKEN_TIMEOUT_S = 60.0  # a stalled decoder must not hang a caller forever


@dataclass(frozen=True)
class FastEngineConfig:
    """The engine's knobs; the server sets them from its typed settings (from_settings)."""

    max_slots: int = 64  # concurrent requests the KV cache holds
    # Prompt + speech tokens per request (upstream allows 1000 speech tokens); 0: 1024 for
    # Chatterbox, 1536 for Turbo (its prompt alone is 376 positions).
    max_len: int = 0
    t3_dtype: str = "bfloat16"  # bfloat16 | float16 | float32
    cuda_graphs: bool = True
    capacity: int = 0  # 0: measure at start-up; >0: trust this many streams
    # How capacity is measured at start-up: "load" (callers streaming through the engine,
    # capacity.probe_capacity) or "model" (timed decode steps and vocoder batches only).
    capacity_probe: str = "load"
    # While few callers stream, their first window is this short (first audio sooner); beyond
    # the measured light_streams, plan.first_tokens. 0: always plan.first_tokens.
    light_first_tokens: int = 16
    light_streams: int = 0  # 0: measured with the capacity (load probe); >0: trust this many
    watermark: bool = True  # upstream watermarks every output (Perth); per window here
    s3gen_dtype: str = "float16"  # the flow-matching estimator's dtype on CUDA
    # Flow-matching steps per render; 0: the model's own (10 for Chatterbox, 2 for Turbo).
    # Fewer make the vocoder, the bottleneck under load, cheaper and change the audio.
    s3gen_steps: int = 0
    # The conformer encoder and HiFi-GAN's convolutions in bfloat16/float16 ("off": float32).
    s3gen_autocast: str = "off"
    s3gen_prompt_tokens: int = 0  # >0: trim S3Gen's reference prompt to this many tokens (25/s)
    # Windows per S3Gen batch. The H100 is busy from 8 windows on (16 take twice as long), so
    # more only makes a first window wait longer behind the batch in flight.
    vocoder_batch: int = 8
    # First-audio levers (issue 20), off by default; each is measured on its own in the bench.
    # A vocoder batch holds first windows (a caller waiting for first audio) or later windows,
    # never both: a first window is not padded to a later window's length, nor slowed by its rows.
    first_windows_apart: bool = False
    # >0: a later window (its caller already hears audio) waits, to render in a fuller batch,
    # until its caller's audio runs out within this many seconds, or a whole batch waits;
    # first windows never wait. Fewer, larger batches: vocoder time freed for T3 and first windows.
    vocoder_hold_s: float = 0.0
    # >0: when a caller's audio runs out within this many seconds and the next planned window's
    # tokens are not all decoded (T3 slower than the plan's growth, as in a burst), the window
    # is rendered with the tokens there are (at least EARLY_MIN_TOKENS new ones) rather than
    # leave a gap. 0: windows are always the planned size.
    early_window_s: float = 0.0
    s3gen_graphs: str = "render"  # render (whole S3Gen render per graph) | estimator | off
    # Voices' T3 conditioning kept as keys/values (LRU): ~4 MB per voice and exaggeration for
    # Chatterbox, ~37 MB per voice for Turbo (376 positions) in bf16.
    prefix_cache_mb: int = 512
    plan: ChunkPlan = ChunkPlan()

    def __post_init__(self) -> None:
        if self.s3gen_steps < 0:
            raise ValueError(
                f"TTS_CHATTERBOX_FAST_S3GEN_STEPS must be 0 (the model's own) or more, not {self.s3gen_steps}"
            )
        if not 0.0 <= self.vocoder_hold_s <= 5.0:
            raise ValueError(f"TTS_CHATTERBOX_FAST_VOCODER_HOLD_S must be 0 (off) to 5 s, not {self.vocoder_hold_s}")
        if not 0.0 <= self.early_window_s <= 5.0:
            raise ValueError(f"TTS_CHATTERBOX_FAST_EARLY_WINDOW_S must be 0 (off) to 5 s, not {self.early_window_s}")
        if self.capacity_probe not in ("load", "model"):
            raise ValueError(f"TTS_CHATTERBOX_FAST_CAPACITY_PROBE must be load or model, not {self.capacity_probe!r}")
        if self.light_first_tokens and self.light_first_tokens <= self.plan.overlap_tokens:
            raise ValueError(
                f"TTS_CHATTERBOX_FAST_LIGHT_FIRST_CHUNK_TOKENS must be 0 (off) or more than the "
                f"{self.plan.overlap_tokens} tokens each window holds back, not {self.light_first_tokens}"
            )

    @property
    def light_plan(self) -> ChunkPlan | None:
        """The plan of a caller who starts while few stream; None when it would be no shorter."""
        if not self.light_first_tokens or self.light_first_tokens >= self.plan.first_tokens:
            return None
        return replace(self.plan, first_tokens=self.light_first_tokens)

    @classmethod
    def from_settings(cls, settings: Settings) -> FastEngineConfig:
        """The server's typed settings (TTS_CHATTERBOX_FAST_*, tts/app/core/config.py)."""
        s = settings
        return cls(
            max_slots=s.chatterbox_fast_max_slots,
            max_len=s.chatterbox_fast_max_len,
            t3_dtype=s.chatterbox_fast_t3_dtype,
            cuda_graphs=s.chatterbox_fast_cuda_graphs,
            capacity=s.chatterbox_fast_capacity,
            capacity_probe=s.chatterbox_fast_capacity_probe,
            light_first_tokens=s.chatterbox_fast_light_first_chunk_tokens,
            light_streams=s.chatterbox_fast_light_streams,
            watermark=s.chatterbox_fast_watermark,
            s3gen_dtype=s.chatterbox_fast_s3gen_dtype,
            s3gen_steps=s.chatterbox_fast_s3gen_steps,
            s3gen_autocast=s.chatterbox_fast_s3gen_autocast,
            s3gen_prompt_tokens=s.chatterbox_fast_s3gen_prompt_tokens,
            vocoder_batch=s.chatterbox_fast_vocoder_batch,
            first_windows_apart=s.chatterbox_fast_first_windows_apart,
            vocoder_hold_s=s.chatterbox_fast_vocoder_hold_s,
            early_window_s=s.chatterbox_fast_early_window_s,
            s3gen_graphs=s.chatterbox_fast_s3gen_graphs,
            prefix_cache_mb=s.chatterbox_fast_prefix_cache_mb,
            plan=ChunkPlan(
                first_tokens=s.chatterbox_fast_first_chunk_tokens, max_tokens=s.chatterbox_fast_max_chunk_tokens
            ),
        )


def _kv_buckets(max_len: int) -> tuple[int, ...]:
    """128, 256, then every 128: at 32 streams a step reads more KV cache than weights, so
    attending to a doubled (half-empty) bucket would cost more than capturing more graphs."""
    return (*range(128, max_len, 128), max_len)


SILENCE_TOKEN = 4299  # chatterbox.models.s3gen.const.S3GEN_SIL: Turbo ends every sentence with 3


_voice_serials = itertools.count()


@dataclass
class _Voice:
    key: str
    speaker_emb: torch.Tensor  # T3 conditioning, on the device in T3's dtype (cast once)
    prompt_tokens: torch.Tensor
    ref_dict: dict  # S3Gen reference (prompt tokens/mels, x-vector)
    # Names this voice's T3 conditioning in the decoder's prefix cache: a clip prepared again
    # (deleted and uploaded anew under the same name) is a new voice with a new serial.
    serial: int = field(default_factory=lambda: next(_voice_serials))


WINDOW_DONE = object()  # wakes a stream when one of its windows has been rendered


class FastChatterboxEngine:
    def __init__(self, model: Any, config: FastEngineConfig | None = None, *, generator_seed: int | None = None):
        self.config = config or FastEngineConfig()
        self.model = model
        hp = model.t3.hp
        if hp.is_multilingual:
            raise ValueError(
                "TTS_CHATTERBOX_ENGINE=fast supports the english and turbo variants; "
                "use TTS_CHATTERBOX_ENGINE=reference for the multilingual one"
            )
        # Turbo: GPT-2 T3 without CFG, GPT-2 text tokenizer, 2-step (meanflow) S3Gen.
        self.turbo = bool(getattr(model.t3, "is_gpt", False))
        self.sample_rate = int(model.sr)
        self.device = model.t3.device
        dtype = getattr(torch, self.config.t3_dtype)
        if self.device.type == "cpu":
            dtype = torch.float32  # half matmuls on CPU are slow and not what tests compare
        self.t3_dtype = dtype
        model.t3.to(dtype=dtype).eval()
        max_len = self.config.max_len or (1536 if self.turbo else 1024)
        shape = DecoderShape(self.config.max_slots, max_len, _kv_buckets(max_len))
        self.decoder = T3BatchDecoder(model.t3, shape, dtype=dtype, device=self.device)
        self.graphs = self.decoder.capture_graphs() if self.config.cuda_graphs else 0
        self.scheduler = DecodeScheduler(
            self.decoder, generator_seed=generator_seed, prefix_cache_bytes=self.config.prefix_cache_mb << 20
        )
        self.vocoder = BatchedVocoder(
            model.s3gen,
            max_batch=min(self.config.vocoder_batch, self.config.max_slots),
            cuda_graphs=self.config.cuda_graphs,
            graphs=self.config.s3gen_graphs,
            estimator_dtype=self.config.s3gen_dtype,
            n_cfm_timesteps=self.config.s3gen_steps or None,
            autocast=self.config.s3gen_autocast,
            first_apart=self.config.first_windows_apart,
            hold_s=self.config.vocoder_hold_s,
        )
        self.vocoder_graphs = 0
        if self._default_conds_for_warmup(model) is not None:
            ref = trim_reference(model.conds.gen, self.config.s3gen_prompt_tokens)
            self.vocoder_graphs = self.vocoder.warm_up(ref, self.config.plan)
        self._voice_lock = threading.Lock()
        self._voices: dict[str, _Voice] = {}
        self._default_conds = getattr(model, "conds", None)
        if self._default_conds is not None:
            # The built-in voice's conditioning, cached before the first caller needs it.
            self.scheduler.join_inputs([self.make_job("Hello.", self._voice(None), {})])
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        self.scheduler.start()
        self.vocoder.start()
        self.capacity = self.config.capacity or self.config.max_slots
        self.capacity_report: dict | None = None
        # Callers that start while at most this many stream get the light plan (measured by
        # the load probe unless configured; 0 until then: everyone on the standard plan).
        self.light_streams = self.config.light_streams
        self.light_plans = 0  # sentences started on the light plan (a counter on /metrics)
        self._streams = 0
        self._streams_lock = threading.Lock()
        self.early_windows = 0  # windows rendered short so a caller would not hear a gap
        # Where each sentence's first audio went (monotonic times, seconds from its submission):
        # read by the bench, bounded so a server never grows it.
        self.first_audio_trace: deque[dict] = deque(maxlen=4096)

    @staticmethod
    def _default_conds_for_warmup(model: Any) -> Any:
        return getattr(model, "conds", None)

    # Read by the server: how many segments to let in at once (the rest queue, then 429).
    @property
    def max_parallel(self) -> int:
        return self.capacity

    @property
    def active_streams(self) -> int:
        return self._streams

    def plan_for_new_stream(self) -> ChunkPlan:
        """The chunk plan of a sentence starting now: its first window short while the GPU has
        room (this stream is counted in ``active_streams`` already), the standard one beyond."""
        light = self.config.light_plan
        if light is not None and self._streams <= self.light_streams:
            self.light_plans += 1
            return light
        return self.config.plan

    def close(self) -> None:
        self.scheduler.stop()
        self.vocoder.stop()

    # ---- voices ----

    def _voice(self, clip: str | None) -> _Voice:
        key = clip or "<builtin>"
        with self._voice_lock:
            voice = self._voices.get(key)
            if voice is not None:
                return voice
            if clip is None:
                if self._default_conds is None:
                    from tts.app.backends.base import BackendNotReady

                    raise BackendNotReady(
                        "the Chatterbox checkpoint has no built-in voice (conds.pt); use a cloned voice"
                    )
                conds = self._default_conds
            else:
                # prepare_conditionals writes model.conds: serialised by the lock, restored after.
                saved = self.model.conds
                self.model.prepare_conditionals(clip)
                conds, self.model.conds = self.model.conds, saved
            ref = trim_reference(conds.gen, self.config.s3gen_prompt_tokens)
            voice = _Voice(
                key=key,
                speaker_emb=conds.t3.speaker_emb.to(device=self.device, dtype=self.t3_dtype),
                prompt_tokens=conds.t3.cond_prompt_speech_tokens.to(device=self.device),
                ref_dict=ref,
            )
            if self.device.type == "cuda":
                # Made on this thread's stream; the decode and vocoder streams read them next.
                torch.cuda.current_stream(self.device).synchronize()
            self._voices[key] = voice
            return voice

    def forget_clip(self, path: str) -> None:
        with self._voice_lock:
            voice = self._voices.pop(path, None)
        if voice is not None:
            self.vocoder.forget(voice.ref_dict)

    # ---- one segment ----

    def make_job(self, text: str, voice: _Voice, kwargs: dict) -> DecodeJob:
        from chatterbox.models.t3.modules.cond_enc import T3Cond

        if self.turbo:
            return self._make_turbo_job(text, voice, kwargs)
        from chatterbox.tts import punc_norm

        t3 = self.model.t3
        tokens = self.model.tokenizer.text_to_tokens(punc_norm(text))
        tokens = torch.cat([tokens, tokens], dim=0)  # the CFG pair
        tokens = F.pad(tokens, (1, 0), value=t3.hp.start_text_token)
        tokens = F.pad(tokens, (0, 1), value=t3.hp.stop_text_token)
        # Not T3Cond.to(), whose .item() per field would make every new request wait for all
        # GPU work in flight: the voice's tensors are on the device already, and the scheduler
        # moves emotion_adv there on its own stream.
        exaggeration = float(kwargs.get("exaggeration", 0.5))
        cond = T3Cond(
            speaker_emb=voice.speaker_emb,
            cond_prompt_speech_tokens=voice.prompt_tokens,
            emotion_adv=torch.full((1, 1, 1), exaggeration, dtype=self.t3_dtype),
        )
        return DecodeJob(
            text_tokens=tokens,
            t3_cond=cond,
            prefix_key=(voice.serial, exaggeration),  # exaggeration is part of the conditioning
            cfg_weight=float(kwargs.get("cfg_weight", 0.5)),
            temperature=float(kwargs.get("temperature", 0.8)),
            repetition_penalty=float(kwargs.get("repetition_penalty", 1.2)),
            min_p=float(kwargs.get("min_p", 0.05)),
            top_p=float(kwargs.get("top_p", 1.0)),
            greedy=bool(kwargs.get("greedy", False)),
            max_new_tokens=int(kwargs.get("max_new_tokens", 1000)),
            stop_on_eos=bool(kwargs.get("stop_on_eos", True)),
        )

    def _make_turbo_job(self, text: str, voice: _Voice, kwargs: dict) -> DecodeJob:
        """As ChatterboxTurboTTS.generate: GPT-2 token ids, no CFG, top-k/top-p sampling.
        cfg_weight and exaggeration do not apply (upstream ignores them with a warning)."""
        from chatterbox.models.t3.modules.cond_enc import T3Cond
        from chatterbox.tts_turbo import punc_norm

        ids = self.model.tokenizer(punc_norm(text), return_tensors="pt").input_ids
        cond = T3Cond(
            speaker_emb=voice.speaker_emb,
            cond_prompt_speech_tokens=voice.prompt_tokens,
            emotion_adv=torch.zeros((1, 1, 1), dtype=self.t3_dtype),
        )
        return DecodeJob(
            text_tokens=ids,
            t3_cond=cond,
            prefix_key=(voice.serial,),
            cfg_weight=0.0,
            temperature=float(kwargs.get("temperature", 0.8)),
            repetition_penalty=float(kwargs.get("repetition_penalty", 1.2)),
            min_p=0.0,
            top_p=float(kwargs.get("top_p", 0.95)),
            top_k=int(kwargs.get("top_k", 1000)),
            greedy=bool(kwargs.get("greedy", False)),
            max_new_tokens=int(kwargs.get("max_new_tokens", 1000)),
            stop_on_eos=bool(kwargs.get("stop_on_eos", True)),
        )

    def stream(self, call: Any, cancelled: threading.Event) -> Iterator[np.ndarray]:
        voice = self._voice(call.audio_prompt_path)
        job = self.make_job(call.text, voice, call.kwargs)
        with self._streams_lock:
            self._streams += 1
        try:
            yield from self._stream_job(job, voice, cancelled)
        finally:
            job.cancelled.set()  # frees the decode slot if the caller left early
            with self._streams_lock:
                self._streams -= 1

    def _stream_job(self, job: DecodeJob, voice: _Voice, cancelled: threading.Event) -> Iterator[np.ndarray]:
        """Plan windows as tokens arrive, render them ahead (pipelined), emit in order."""
        plan = self.plan_for_new_stream()
        stitcher = StreamStitcher(plan)
        job.buffered = True
        submitted = time.monotonic()
        self.scheduler.submit(job)
        early_s = self.config.early_window_s
        tokens: list[int] = []
        consumed = 0  # raw tokens taken from job.buffer (control tokens included)
        rendering: deque = deque()  # (future, start, end, final), in plan order
        planned = 0
        decoded_all = done = False
        last_progress = time.monotonic()
        # When the caller's buffered audio runs out: the vocoder serves the earliest first.
        clock = {"start": None, "audio_s": 0.0, "submitted": last_progress}
        while True:
            while rendering and rendering[0][0].done():
                fut, start, end, final = rendering.popleft()
                out = stitcher.stitch(fut.result(), start, end, final)
                if len(out):
                    if clock["start"] is None:
                        clock["start"] = time.monotonic()
                        self._trace_first_audio(submitted, job, fut, clock["start"])
                    clock["audio_s"] += len(out) / self.sample_rate
                    yield self._watermark(out)
            if cancelled.is_set():
                return
            if done:
                if not rendering:
                    return
                rendering[0][0].result(timeout=TOKEN_TIMEOUT_S)
                continue
            fresh = job.buffer[consumed:]
            if fresh:
                consumed += len(fresh)
                tokens.extend(t for t in fresh if t < SPEECH_VOCAB)  # upstream drops control tokens
                last_progress = time.monotonic()
            want = stitcher.planned_tokens + plan.next_size(planned)
            if len(tokens) >= want:
                # At most the planned window, however many tokens arrived (a caller that read
                # slowly, a thread that waited for the GIL): the rest go in the next windows,
                # so every render stays inside the shapes the vocoder captured at start-up.
                self._render(rendering, stitcher, voice, tokens, want, job, clock, final=False)
                planned += 1
                continue
            # Early window: the caller already hears audio, nothing of theirs is rendering, and
            # their audio runs out within early_s: render the tokens there are, not a gap.
            early_at = None
            if early_s > 0 and clock["start"] is not None and not rendering and not decoded_all:
                early_at = clock["start"] + clock["audio_s"] - early_s
            now = time.monotonic()
            if early_at is not None and now >= early_at and len(tokens) - stitcher.planned_tokens >= EARLY_MIN_TOKENS:
                self._render(rendering, stitcher, voice, tokens, len(tokens), job, clock, final=False)
                self.early_windows += 1
                planned += 1
                continue
            if decoded_all:
                if job.error is not None:
                    raise RuntimeError("Chatterbox decoding failed") from job.error
                done = True
                if self.turbo:  # upstream Turbo ends each sentence with 3 silence tokens
                    tokens.extend([SILENCE_TOKEN] * 3)
                if len(tokens) > stitcher.planned_tokens:
                    self._render(rendering, stitcher, voice, tokens, len(tokens), job, clock, final=True)
                continue
            # Sleep until the decoder has at least the missing tokens, a window is rendered,
            # or decoding ends: all three arrive on job.tokens.
            job.wake_at = consumed + (want - len(tokens))
            timeout = 1.0
            if early_at is not None:
                if now >= early_at:  # due: woken as soon as an early window's tokens are there
                    short = EARLY_MIN_TOKENS - (len(tokens) - stitcher.planned_tokens)
                    job.wake_at = min(job.wake_at, consumed + max(1, short))
                else:
                    timeout = min(timeout, early_at - now)
            if len(job.buffer) >= job.wake_at:
                continue
            try:
                item = job.tokens.get(timeout=timeout)
            except queue.Empty:
                if early_at is not None and timeout < 1.0:
                    continue  # the early-window moment, not a stall
                if time.monotonic() - last_progress > TOKEN_TIMEOUT_S:
                    raise RuntimeError("Chatterbox decoder produced no token for 60 s") from None
                continue
            if item is FINISHED:
                decoded_all = True  # every token is in job.buffer before FINISHED is sent

    def _render(
        self,
        rendering: deque,
        stitcher: StreamStitcher,
        voice: _Voice,
        tokens: list[int],
        end: int,
        job: DecodeJob,
        clock: dict,
        *,
        final: bool,
    ):
        """Submit the window of ``tokens`` that ends at ``end`` (the stitcher picks its start)."""
        start, end = stitcher.plan_window(end, final)
        # Before the first audio, the request's arrival time orders it among other first
        # windows; after, the moment its caller's buffered audio runs out.
        deadline = clock["submitted"] if clock["start"] is None else clock["start"] + clock["audio_s"]
        fut = self.vocoder.submit(voice.ref_dict, tokens[start:end], first=start == 0, deadline=deadline)
        fut.add_done_callback(lambda _f: job.tokens.put(WINDOW_DONE))
        rendering.append((fut, start, end, final))

    def _trace_first_audio(self, submitted: float, job: DecodeJob, fut, heard: float) -> None:
        """Where a sentence's first audio went, in seconds from its submission: T3's prefill
        (its first token), the first window's tokens decoded (window submitted), its render
        started and ended (the vocoder's queue, then the batch), the audio handed out."""
        rj = getattr(fut, "job", None)
        if rj is None or not rj.rendered:
            return
        self.first_audio_trace.append(
            {
                "first_token": job.first_token_at - submitted if job.first_token_at else None,
                "window_submitted": rj.submitted - submitted,
                "render_start": rj.started - submitted,
                "rendered": rj.rendered - submitted,
                "heard": heard - submitted,
                "window_tokens": len(rj.tokens),
            }
        )

    def _watermark(self, audio: np.ndarray) -> np.ndarray:
        marker = getattr(self.model, "watermarker", None)
        if not self.config.watermark or marker is None:
            return audio
        return np.asarray(marker.apply_watermark(audio, sample_rate=self.sample_rate), dtype=np.float32)

    # ---- capacity ----

    def measure_capacity(
        self,
        *,
        probe: str | None = None,
        headroom: float = 2.3,
        prompt_len: int | None = None,
        audio_s: float = 3.0,
        stagger_s: float = 3.0,
    ) -> dict:
        """Streams the GPU sustains in real time; sets ``capacity`` (and ``light_streams``).

        First the timing model: per second of audio a stream needs 25 decode steps (shared by
        the whole batch) and vocoding of 25 tokens (batched per voice); n streams fit while
        both together take under 1/headroom of each wall-clock second (2.3: calibrated on the
        H100 Chatterbox bench). It misses what load does to the decode step (the vocoder's
        kernels on the same GPU, the callers' threads): on the H200 it said 96 Turbo streams
        where 64 played gap-free (docs/benchmarks.md). So with ``probe="load"`` (the default,
        ``TTS_CHATTERBOX_FAST_CAPACITY_PROBE``) it is only the first guess of a search that
        streams real sentences through this engine (``capacity.probe_capacity``): the capacity
        is the most callers, arriving over ``stagger_s``, whose every sentence ran at RTF < 1
        without a gap.
        """
        from tts.app.backends.chatterbox_fast import capacity as cap

        model = cap.measure(self, headroom=headroom, prompt_len=prompt_len, audio_s=audio_s)
        report = {"model": model, "capacity_streams": model["capacity_streams"], "light_streams": self.light_streams}
        if (probe or self.config.capacity_probe) == "load":
            t0 = time.perf_counter()
            measured = cap.probe_capacity(
                self,
                estimate=max(1, model["capacity_streams"]),
                stagger_s=stagger_s,
                light_streams=self.config.light_streams or None,  # configured: not searched
            )
            measured["seconds"] = round(time.perf_counter() - t0, 1)
            report.update(measured)
        self.capacity = max(1, report["capacity_streams"])
        self.capacity_report = report
        return report

    def register_metrics(self, registry) -> None:
        """Expose capacity and load on the server's Prometheus registry (for dialing)."""
        from prometheus_client import Gauge

        Gauge(
            "tts_chatterbox_capacity_streams",
            "Concurrent streams this GPU sustains at RTF < 1 (measured at start-up)",
            registry=registry,
        ).set_function(lambda: self.capacity)
        Gauge("tts_chatterbox_active_streams", "Segments streaming now", registry=registry).set_function(
            lambda: self._streams
        )
        Gauge(
            "tts_chatterbox_light_streams",
            "Up to this many streams, a sentence starts with a short first window (measured at start-up)",
            registry=registry,
        ).set_function(lambda: self.light_streams)
        Gauge("tts_chatterbox_decode_batch", "Requests in the T3 decode batch", registry=registry).set_function(
            lambda: self.scheduler.active
        )
        Gauge(
            "tts_chatterbox_decode_step_seconds", "Wall time of the last T3 decode step", registry=registry
        ).set_function(lambda: self.scheduler.last_step_s)
        registry.register(_EngineCounters(self))


class _EngineCounters:
    """Cumulative decode and vocoder figures as Prometheus counters (rates show where a
    slow first audio comes from: decode steps slowing down, or windows queueing)."""

    def __init__(self, engine) -> None:
        self.engine = engine

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        sched, voc = self.engine.scheduler, self.engine.vocoder
        for name, doc, value in (
            ("tts_chatterbox_decode_steps", "T3 decode steps", sched.steps),
            ("tts_chatterbox_decode_step_seconds", "Wall time in T3 decode steps", sched.step_s_total),
            ("tts_chatterbox_prefill_seconds", "Wall time admitting requests (prefill)", sched.prefill_s_total),
            (
                "tts_chatterbox_prefix_cache_hits",
                "Admissions that reused a voice's cached conditioning",
                sched.prefix_hits,
            ),
            ("tts_chatterbox_prefix_cache_misses", "Voice conditionings computed", sched.prefix_misses),
            (
                "tts_chatterbox_light_plan_sentences",
                "Sentences started with the short first window (few streams at the time)",
                self.engine.light_plans,
            ),
            ("tts_chatterbox_vocoder_windows", "Token windows vocoded by S3Gen", voc.windows),
            (
                "tts_chatterbox_early_windows",
                "Windows rendered short because a caller's audio was about to run out",
                self.engine.early_windows,
            ),
            ("tts_chatterbox_vocoder_batches", "S3Gen batches", voc.batches),
            ("tts_chatterbox_vocoder_busy_seconds", "Wall time rendering S3Gen batches", voc.busy_s),
            ("tts_chatterbox_first_windows", "Streams' first windows vocoded", voc.first_windows),
            (
                "tts_chatterbox_first_window_wait_seconds",
                "Time first windows waited for the vocoder (queue, before rendering)",
                voc.first_wait_s,
            ),
            (
                "tts_chatterbox_vocoder_idle_capture_seconds",
                "Time the idle vocoder spent capturing graphs for shapes met while serving (new voices)",
                voc.idle_capture_s,
            ),
        ):
            yield CounterMetricFamily(name, doc, value=value)


def build_engine(model: Any, config: FastEngineConfig | None = None) -> FastChatterboxEngine:
    t0 = time.perf_counter()
    engine = FastChatterboxEngine(model, config)
    if engine.config.capacity == 0 and engine.device.type == "cuda":
        report = engine.measure_capacity()
        log.info("Chatterbox fast engine capacity: %s", report)
    log.info(
        "Chatterbox fast engine ready in %.1fs (%d CUDA graphs, T3 %s, %d slots, capacity %d)",
        time.perf_counter() - t0,
        engine.graphs,
        engine.t3_dtype,
        engine.config.max_slots,
        engine.capacity,
    )
    return engine
