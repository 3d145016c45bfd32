"""Chunked S3Gen vocoding: speech tokens become audio while T3 is still decoding.

Each stream renders *windows* of its tokens: a few tokens of left context (so the conformer
and the HiFi-GAN start mid-utterance, not from silence), the new tokens, and at the right edge
tokens that lack S3Gen's 3-token lookahead. Those last ``overlap`` tokens are held back and
rendered again at the start of the next window; the two renderings are crossfaded
(linearly), so a join falls on audio that both windows produced with full context on one
side. Windows of many streams with the same voice run as one padded S3Gen batch
(``S3GenRenderer``: one CUDA graph per batch bucket).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np
import torch

from tts.app.backends.chatterbox_fast.s3gen_render import SAMPLES_PER_TOKEN, TOKEN_BUCKET, S3GenRenderer, to_numpy
from tts.app.backends.chatterbox_fast.streams import LOW_PRIORITY, private_stream

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChunkPlan:
    """When to vocode: the first window small (first audio soon), later ones larger (fewer calls)."""

    first_tokens: int = 24  # 0.84 s of audio buffered before the next window is due (H100 bench)
    growth: float = 2.5
    max_tokens: int = 100
    context_tokens: int = 6
    overlap_tokens: int = 3  # = S3Gen's pre-lookahead: the tokens a window renders without right context

    def __post_init__(self) -> None:
        # A window no longer than the tokens it holds back would never move the stream on:
        # it would plan windows forever and play nothing.
        for name, value in (("FIRST_CHUNK_TOKENS", self.first_tokens), ("MAX_CHUNK_TOKENS", self.max_tokens)):
            if value <= self.overlap_tokens:
                raise ValueError(
                    f"TTS_CHATTERBOX_FAST_{name} must be more than the {self.overlap_tokens} tokens "
                    f"each window holds back for the next, not {value}"
                )
        if self.growth < 1:
            raise ValueError(f"chunk growth must be at least 1, not {self.growth}")

    def next_size(self, done_chunks: int) -> int:
        return int(min(self.max_tokens, self.first_tokens * self.growth**done_chunks))


class StreamStitcher:
    """Turns rendered windows into gapless output: plans windows, emits, holds back, crossfades.

    Pure numpy, one per stream. Windows are planned ahead (several may be rendering at once)
    and must be stitched in the order they were planned.
    """

    def __init__(self, plan: ChunkPlan, samples_per_token: int = SAMPLES_PER_TOKEN) -> None:
        self.plan = plan
        self.spt = samples_per_token
        self.planned_tokens = 0  # tokens covered by planned windows, minus the last hold-back
        self.emitted_tokens = 0  # tokens whose audio has been emitted (final)
        self.tail: np.ndarray | None = None  # audio of the held-back tokens, from the previous window

    def plan_window(self, n_tokens_total: int, final: bool) -> tuple[int, int]:
        """Token range [start, end) to render next, given tokens produced so far."""
        start = max(0, self.planned_tokens - self.plan.context_tokens)
        hold = 0 if final else min(self.plan.overlap_tokens, n_tokens_total - self.planned_tokens)
        self.planned_tokens = n_tokens_total - hold
        return start, n_tokens_total

    def stitch(self, audio: np.ndarray, start: int, end: int, final: bool) -> np.ndarray:
        """``audio``: the render of tokens [start, end). Returns samples to play now."""
        spt = self.spt
        audio = audio[: (end - start) * spt]
        # Drop the left context: it only conditions the render.
        body = audio[(self.emitted_tokens - start) * spt :]
        if self.tail is not None and len(self.tail):
            n = min(len(self.tail), len(body))
            # Linear (equal-gain): both renders are of the same tokens, so strongly correlated.
            fade = np.linspace(0.0, 1.0, n, dtype=np.float32)
            body = body.copy()
            body[:n] = self.tail[:n] * (1.0 - fade) + body[:n] * fade
        hold = 0 if final else min(self.plan.overlap_tokens, end - self.emitted_tokens) * spt
        out = body[: len(body) - hold] if hold else body
        self.tail = body[len(body) - hold :] if hold else None
        self.emitted_tokens = end - (hold // spt)
        return out.astype(np.float32, copy=False)


@dataclass
class RenderJob:
    ref_dict: dict  # the voice: windows batch together only with the same dict object
    tokens: list[int]
    first: bool  # window starts at token 0: apply S3Gen's reference-spillover fade-in
    deadline: float = 0.0  # monotonic time the caller's audio runs out: most urgent first
    future: Future = field(default_factory=Future)
    submitted: float = field(default_factory=time.monotonic)
    started: float = 0.0  # monotonic: its batch began rendering (first-audio breakdown)
    rendered: float = 0.0  # and ended


def select_batch(
    pending: list[RenderJob], now: float, max_batch: int, *, first_apart: bool = False, hold_s: float = 0.0
) -> tuple[list[RenderJob], float | None]:
    """The windows to render next, most urgent (earliest deadline) first, and, when none is
    to render yet, the monotonic time one falls due (None: nothing pending). ``pending`` is
    sorted by deadline in place; the chosen windows are removed from it.

    - Default: the ``max_batch`` most urgent windows, whatever they are.
    - ``first_apart``: a batch holds first windows or later ones, never both; the most urgent
      window picks which (a first window's deadline is its arrival, so it is usually first;
      a later window whose caller has already run out of audio is not starved by new callers).
    - ``hold_s`` > 0: a later window falls due ``hold_s`` before its caller's audio runs out;
      until then it waits for a fuller batch. A batch starts when a first window or a due one
      waits, or ``max_batch`` windows do; it is topped up with the soonest others (they must
      render anyway, and a row more costs less than a batch more).
    """
    pending.sort(key=lambda j: j.deadline)
    if not pending:
        return [], None
    if first_apart and pending[0].first:
        batch = [j for j in pending if j.first][:max_batch]
    else:
        later = [j for j in pending if not j.first] if first_apart else pending
        if hold_s > 0 and len(later) < max_batch:
            due = [j for j in later if j.first or j.deadline - hold_s <= now]
            if not due:
                return [], later[0].deadline - hold_s
        batch = later[:max_batch]
    chosen = {id(j) for j in batch}
    pending[:] = [j for j in pending if id(j) not in chosen]
    return batch, None


class BatchedVocoder:
    """A worker thread rendering windows for all streams; same-voice windows share a batch.

    One thread on purpose: two threads replaying S3Gen graphs on two CUDA streams (a
    high-priority lane for first windows was tried) hung the GPU at the first concurrent
    load in the H100 bench. First windows are served first instead (earliest deadline), and
    the batch limit bounds how long one waits behind the batch in flight.

    ``graphs``: "render" captures the whole render per bucket (``S3GenRenderer``);
    "estimator" graphs only the flow-matching estimator (the earlier design, kept to compare);
    "off" runs eagerly.
    """

    def __init__(
        self,
        s3gen,
        *,
        max_batch: int = 8,
        n_cfm_timesteps: int | None = None,
        cuda_graphs: bool = True,
        graphs: str = "render",
        estimator_dtype: str = "float32",
        autocast: str = "off",
        first_apart: bool = False,
        hold_s: float = 0.0,
    ) -> None:
        if graphs not in ("render", "estimator", "off"):
            raise ValueError(f"TTS_CHATTERBOX_FAST_S3GEN_GRAPHS must be render, estimator or off, not {graphs!r}")
        self.s3gen = s3gen
        self.max_batch = max_batch
        # First-audio levers (FastEngineConfig.first_windows_apart / vocoder_hold_s); plain
        # attributes, read at each batch, so the bench can switch them between sweeps.
        self.first_apart = first_apart
        self.hold_s = hold_s
        self.device = next(s3gen.parameters()).device
        self._pending: list[RenderJob] = []
        self._cv = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="s3gen-vocoder", daemon=True)
        from tts.app.backends.chatterbox_fast import s3gen_patches

        self.device_source = s3gen_patches.install(s3gen)
        on_cuda = self.device.type == "cuda"
        # Renders capture on and replay from a low-priority stream of their own (streams.py).
        self._stream = private_stream(self.device, priority=LOW_PRIORITY) if on_cuda else None
        if on_cuda and estimator_dtype != "float32":
            # The flow-matching U-Net casts its inputs to its own dtype (upstream's fp16 hook);
            # CosyVoice serves this estimator in fp16 as well.
            cfm = s3gen.flow.decoder
            inner = getattr(cfm.estimator, "inner", cfm.estimator)
            inner.to(dtype=getattr(torch, estimator_dtype))
        self.graph_mode = graphs if (cuda_graphs and on_cuda) else "off"
        self.graphed = None
        if self.graph_mode == "estimator":
            from tts.app.backends.chatterbox_fast.s3gen_graphs import install

            self.graphed = install(s3gen, max_rows=2 * max_batch, stream=self._stream)
        self.renderer = S3GenRenderer(
            s3gen,
            max_rows=max_batch,
            n_timesteps=n_cfm_timesteps,  # None: 10 (2 for Turbo's meanflow S3Gen)
            cuda_graphs=self.graph_mode == "render",
            stream=self._stream,
            autocast=autocast,
        )
        # Observability (plain numbers, read without locks; on /metrics via the engine).
        self.batches = 0
        self.windows = 0
        self.busy_s = 0.0  # wall time spent rendering
        self.first_windows = 0
        self.first_wait_s = 0.0  # the same for streams' first windows (first audio)
        self.idle_capture_s = 0.0  # wall time capturing graphs for buckets met while serving

    def start(self) -> None:
        self.renderer.serving = True  # from now on new buckets are captured only when idle
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stopping = True
            self._cv.notify_all()
        self._thread.join(timeout=10)
        with self._cv:
            pending, self._pending = self._pending, []
        for job in pending:  # their streams fail now instead of waiting out their timeout
            job.future.set_exception(RuntimeError("the TTS engine is shutting down"))

    def warm_up(self, ref_dict: dict, plan: ChunkPlan) -> int:
        """Render every (batch, length) bucket once so graphs are captured before serving."""
        if self.graph_mode == "off":
            return 0
        longest = plan.max_tokens + plan.context_tokens + plan.overlap_tokens
        lengths = sorted({*range(TOKEN_BUCKET, longest, TOKEN_BUCKET), longest})
        n = 1
        while n <= self.max_batch:
            for length in lengths:
                self.render(ref_dict, [[0] * length] * n, [False] * n)
            n *= 2
        return self.graphed.captured if self.graph_mode == "estimator" else self.renderer.captured

    def submit(self, ref_dict: dict, tokens: list[int], first: bool, deadline: float = 0.0) -> Future:
        job = RenderJob(ref_dict, tokens, first, deadline)
        job.future.job = job  # its render times, for the engine's first-audio trace
        with self._cv:
            if self._stopping:
                raise RuntimeError("the S3Gen vocoder is stopped")
            self._pending.append(job)
            self._cv.notify()
        return job.future

    def forget(self, ref_dict: dict) -> None:
        """Drop a voice's prepared reference (its clip was deleted or replaced)."""
        self.renderer.forget(ref_dict)

    def _next_batch(self) -> list[RenderJob] | None:
        """The most urgent windows (earliest deadline: a caller about to hear silence, or a
        stream still waiting for its first audio), up to the batch limit (``select_batch``:
        with the first-audio levers, first windows apart and later ones held for fuller batches)."""
        with self._cv:
            while not self._stopping:
                batch, due_at = select_batch(
                    self._pending, time.monotonic(), self.max_batch, first_apart=self.first_apart, hold_s=self.hold_s
                )
                if batch:
                    return batch
                if due_at is None and self.renderer.deferred:
                    return []  # idle: time to capture a bucket met while serving
                # Woken by a new window, or when the most urgent held one falls due.
                self._cv.wait(timeout=None if due_at is None else max(0.0, due_at - time.monotonic()))
            return None

    def _run(self) -> None:
        while True:
            batch = self._next_batch()
            if batch is None:
                return
            if not batch:
                self._capture_deferred()
                continue
            t0 = time.monotonic()
            for j in batch:
                j.started = t0
                if j.first:
                    self.first_windows += 1
                    self.first_wait_s += t0 - j.submitted
            # By the reference itself, not a name: a voice uploaded again under its old name
            # is another reference, and its windows must not render in the old one's timbre.
            by_voice: dict[int, list[RenderJob]] = {}
            for j in batch:
                by_voice.setdefault(id(j.ref_dict), []).append(j)
            for jobs in by_voice.values():
                try:
                    outs = self.render(jobs[0].ref_dict, [j.tokens for j in jobs], [j.first for j in jobs])
                except BaseException as exc:
                    log.exception("S3Gen render failed")
                    for j in jobs:
                        j.future.set_exception(exc)
                    continue
                done = time.monotonic()
                for j, audio in zip(jobs, outs, strict=True):
                    j.rendered = done
                    j.future.set_result(audio)
            self.busy_s += time.monotonic() - t0

    def _on_stream(self):  # noqa: ANN202 - a context manager
        """The vocoder's own CUDA stream (renders and captures), or nothing on the CPU."""
        return torch.cuda.stream(self._stream) if self._stream is not None else contextlib.nullcontext()

    def _capture_deferred(self) -> None:
        t0 = time.monotonic()
        with self._on_stream():
            self.renderer.capture_deferred()
        self.idle_capture_s += time.monotonic() - t0

    @torch.inference_mode()
    def render(self, ref_dict: dict, windows: list[list[int]], first: list[bool]) -> list[np.ndarray]:
        """Vocode token windows of one voice in one padded batch: float32 audio per window."""
        with self._on_stream():
            voice = self.renderer.voice(ref_dict)
            wavs = self.renderer.render(voice, windows)
            fade = self.s3gen.trim_fade
            for i, is_first in enumerate(first):
                if is_first:
                    wavs[i, : len(fade)] *= fade
            out = to_numpy(wavs, [len(w) for w in windows])
        self.batches += 1
        self.windows += len(windows)
        return out


def trim_reference(ref_dict: dict, max_tokens: int) -> dict:
    """Keep the last ``max_tokens`` of S3Gen's reference prompt (2 mel frames per token).

    Every window re-encodes the whole prompt (10 s by default), so a shorter prompt makes
    streaming vocoding several times cheaper, as a shorter reference clip would.
    """
    if max_tokens <= 0 or ref_dict["prompt_token"].shape[-1] <= max_tokens:
        return ref_dict
    out = dict(ref_dict)
    out["prompt_token"] = ref_dict["prompt_token"][..., -max_tokens:]
    out["prompt_token_len"] = torch.full_like(ref_dict["prompt_token_len"], max_tokens)
    out["prompt_feat"] = ref_dict["prompt_feat"][:, -2 * max_tokens :]
    if out.get("prompt_feat_len") is not None:
        out["prompt_feat_len"] = torch.full_like(ref_dict["prompt_feat_len"], 2 * max_tokens)
    return out
