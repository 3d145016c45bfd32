"""Continuous batching of T3 decoding: requests join and leave between steps.

One thread owns the T3 module and the slot cache. Each loop: admit waiting requests into free
slots (one batched prefill), advance every active slot one token (one decode step, a CUDA
graph replay on GPU), hand each request its token, and free slots whose request hit the stop
token, its token budget, or was cancelled (caller hung up).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

import torch

from tts.app.backends.chatterbox_fast.decoder import PrefixKV, T3BatchDecoder
from tts.app.backends.chatterbox_fast.sampling import SlotSampling, choose_tokens, choose_tokens_turbo

log = logging.getLogger(__name__)

FINISHED = None  # sentinel on a job's token queue
WAKE = "wake"  # buffered delivery: enough tokens are in job.buffer


@dataclass
class DecodeJob:
    """One segment's T3 decoding. Tokens (ints) arrive on ``tokens``, then FINISHED."""

    text_tokens: torch.Tensor  # (2, L) int: [SOT] text [EOT], CFG pair; Turbo: (1, L) GPT-2 ids
    t3_cond: object  # chatterbox T3Cond
    cfg_weight: float = 0.5
    temperature: float = 0.8
    repetition_penalty: float = 1.2
    min_p: float = 0.05
    top_p: float = 1.0
    top_k: int = 0  # Turbo only (upstream default 1000)
    # Identifies the conditioning (voice, and exaggeration for Chatterbox): requests with the
    # same key reuse its cached keys/values. None: computed for this request alone.
    prefix_key: object = None
    greedy: bool = False
    max_new_tokens: int = 1000
    stop_on_eos: bool = True
    tokens: queue.Queue = field(default_factory=queue.Queue)
    # Buffered delivery (the engine): tokens go to ``buffer`` and the caller is woken once,
    # when ``len(buffer) >= wake_at``, instead of once per token (a thread wake-up per token
    # per stream costs the GIL more than the decode step itself at 30 streams).
    buffered: bool = False
    buffer: list = field(default_factory=list)
    wake_at: int = 1 << 30
    cancelled: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None
    submitted_at: float = field(default_factory=time.perf_counter)
    first_token_at: float = 0.0  # monotonic: prefill done, first token out (first-audio trace)
    # Scheduler-owned state.
    slot: int = -1
    emitted: int = 0
    last_token: int = 0
    finished: bool = False
    cache_pos: int = 0


class DecodeScheduler:
    def __init__(
        self, decoder: T3BatchDecoder, *, generator_seed: int | None = None, prefix_cache_bytes: int = 512 << 20
    ) -> None:
        self.decoder = decoder
        self.t3 = decoder.t3
        self.hp = self.t3.hp
        self.turbo = decoder.is_gpt
        self.choose = choose_tokens_turbo if self.turbo else choose_tokens
        n = decoder.shape.max_slots
        self.sampling = SlotSampling.empty(n, decoder.vocab, decoder.device)
        pos_emb = getattr(self.t3, "speech_pos_emb", None)
        # Chatterbox's learned speech positions bound a request's tokens; Turbo has none.
        self.max_speech_pos = pos_emb.emb.num_embeddings if pos_emb is not None else None
        self.generator = None
        if generator_seed is not None:
            self.generator = torch.Generator(device=decoder.device).manual_seed(generator_seed)
        self._free = list(range(n))  # lowest slots first: active slots stay packed at the bottom
        self._active: dict[int, DecodeJob] = {}
        self._waiting: deque[DecodeJob] = deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread: threading.Thread | None = None
        # Observability (read by metrics/capacity without locks: plain numbers).
        self.steps = 0
        self.tokens_out = 0
        self.last_step_s = 0.0
        self.step_s_total = 0.0  # wall time in decode steps (host work, graph, sampling, sync)
        self.prefills = 0
        self.prefill_s_total = 0.0
        # Voices' conditioning keys/values (decoder.compute_prefix), most recently used last.
        self._prefixes: OrderedDict[object, PrefixKV] = OrderedDict()
        self.prefix_cache_bytes = prefix_cache_bytes
        self.prefix_hits = 0
        self.prefix_misses = 0

    # ---- public, any thread ----

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="t3-decode-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            self._cv.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=10)
        with self._cv:
            left = list(self._waiting) + list(self._active.values())
            self._waiting.clear()
        for job in left:  # their streams fail now instead of waiting out their timeout
            job.error = RuntimeError("the TTS engine is shutting down")
            self._finish(job)

    def submit(self, job: DecodeJob) -> DecodeJob:
        with self._cv:
            if self._stop:
                raise RuntimeError("the decode scheduler is stopped")
            self._waiting.append(job)
            self._cv.notify_all()
        return job

    @property
    def active(self) -> int:
        return len(self._active)

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    # ---- scheduler thread ----

    def _run(self) -> None:
        stream = getattr(self.decoder, "stream", None)
        if stream is None:
            self._loop()
            return
        with torch.cuda.stream(stream):  # the decoder's high-priority stream (streams.py)
            self._loop()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._stop and not self._waiting and not self._active:
                    self._cv.wait()
                if self._stop:
                    break
                joining = []
                while self._waiting and self._free:
                    job = self._waiting.popleft()
                    if job.cancelled.is_set():
                        job.tokens.put(FINISHED)
                        continue
                    job.slot = self._free.pop(0)
                    joining.append(job)
            try:
                if joining:
                    self._admit(joining)
                self._drop_cancelled()
                if self._active:
                    self._step()
            except BaseException as exc:  # fail every request in flight, keep serving
                log.exception("T3 decode step failed")
                for job in list(self._active.values()) + joining:
                    job.error = exc
                    self._finish(job)

    def join_inputs(self, jobs: list[DecodeJob]) -> tuple[list[PrefixKV], list[torch.Tensor]]:
        """Each job's voice conditioning (cached, or computed now) and the rest of its prompt."""
        prefixes, suffixes = [], []
        for job in jobs:
            prefix = self._cached_prefix(job.prefix_key)
            if prefix is None:  # a miss: the whole prompt as upstream builds it, split
                embeds, len_cond = self._prompt_embeds(job)
                prefix = self._store_prefix(job.prefix_key, self.decoder.compute_prefix(embeds[:1, :len_cond]))
                suffix = embeds[:, len_cond:]
            else:  # a hit: the conditioning (Perceiver / 375 prompt embeddings) is not rebuilt
                suffix = self._suffix_embeds(job)
            prefixes.append(prefix)
            suffixes.append(suffix)
        return prefixes, suffixes

    def _cached_prefix(self, key) -> PrefixKV | None:
        hit = self._prefixes.get(key) if key is not None else None
        if hit is not None:
            self._prefixes.move_to_end(key)
            self.prefix_hits += 1
        return hit

    def _store_prefix(self, key, prefix: PrefixKV) -> PrefixKV:
        """LRU cache of voices' conditioning keys/values, bounded in bytes."""
        self.prefix_misses += 1
        if key is not None and prefix.nbytes <= self.prefix_cache_bytes:
            self._prefixes[key] = prefix
            while sum(p.nbytes for p in self._prefixes.values()) > self.prefix_cache_bytes:
                self._prefixes.popitem(last=False)
        return prefix

    def _admit(self, jobs: list[DecodeJob]) -> None:
        t0 = time.perf_counter()
        prefixes, suffixes = self.join_inputs(jobs)
        totals = [p.length + x.shape[1] for p, x in zip(prefixes, suffixes, strict=True)]
        # A prompt with no room to speak fails alone, before the shared prefill could fail
        # every request joining with it (and the loop's handler every stream in flight).
        room = self.decoder.shape.max_len - 1
        fits = [n < room for n in totals]
        for job, n, ok in zip(jobs, totals, fits, strict=True):
            if not ok:
                job.error = ValueError(
                    f"text too long for one segment: its prompt takes {n} of the decoder's "
                    f"{self.decoder.shape.max_len} positions (split the text or raise TTS_CHATTERBOX_FAST_MAX_LEN)"
                )
                self._finish(job)
        keep = [i for i, ok in enumerate(fits) if ok]
        jobs[:] = [jobs[i] for i in keep]
        if not jobs:
            return
        prefixes, suffixes, totals = ([xs[i] for i in keep] for xs in (prefixes, suffixes, totals))
        logits = self.decoder.prefill(prefixes, suffixes, [job.slot for job in jobs])
        for job, n in zip(jobs, totals, strict=True):
            job.cache_pos = n  # next position to write
            self.sampling.assign(
                job.slot,
                cfg_weight=job.cfg_weight,
                repetition_penalty=job.repetition_penalty,
                temperature=job.temperature,
                min_p=job.min_p,
                top_p=job.top_p,
                top_k=job.top_k,
                greedy=job.greedy,
                bos=self.hp.start_speech_token,
            )
            self._active[job.slot] = job
        slots = torch.tensor([job.slot for job in jobs], device=self.decoder.device)
        chosen = self.choose(logits, slots, self.sampling, self.generator)
        if self.turbo:  # upstream penalises BOS on the first step only: later steps see generated tokens
            bos = self.hp.start_speech_token
            self.sampling.seen[slots, bos] = chosen == bos
        self._deliver(jobs, chosen)
        now = time.monotonic()
        for job in jobs:
            job.first_token_at = now
        self.prefills += 1
        self.prefill_s_total += time.perf_counter() - t0

    def _prompt_embeds(self, job: DecodeJob) -> tuple[torch.Tensor, int]:
        """Exactly upstream's first input: cond + text + BOS (T3.inference then adds BOS
        again; T3.inference_turbo does not), and how many positions the conditioning takes."""
        t3 = self.t3
        text = job.text_tokens.to(device=self.decoder.device, dtype=torch.long)
        # Built by the caller's thread on the host; copied here, in order on the decode stream.
        cond = job.t3_cond
        cond.emotion_adv = cond.emotion_adv.to(device=self.decoder.device, dtype=cond.speaker_emb.dtype)
        start = self.hp.start_speech_token * torch.ones_like(text[:, :1])
        embeds, len_cond = t3.prepare_input_embeds(
            t3_cond=job.t3_cond, text_tokens=text, speech_tokens=start, cfg_weight=0.0 if self.turbo else job.cfg_weight
        )
        if self.turbo:
            return embeds, len_cond
        bos = t3.speech_emb(start[:1]) + t3.speech_pos_emb.get_fixed_embedding(0)
        return torch.cat([embeds, torch.cat([bos, bos])], dim=1), len_cond

    def _suffix_embeds(self, job: DecodeJob) -> torch.Tensor:
        """The positions of ``_prompt_embeds`` after the conditioning, built without it: the
        same ops as upstream ``prepare_input_embeds`` on the text and BOS (checked against
        upstream's tokens by the requests that reuse a voice in tests/tts_chatterbox)."""
        t3 = self.t3
        text = job.text_tokens.to(device=self.decoder.device, dtype=torch.long)
        start = self.hp.start_speech_token * torch.ones_like(text[:, :1])
        text_emb = t3.text_emb(text)
        if not self.turbo and job.cfg_weight > 0.0:
            text_emb[1].zero_()  # CFG unconditional row
        speech_emb = t3.speech_emb(start)
        if self.hp.input_pos_emb == "learned":
            text_emb = text_emb + t3.text_pos_emb(text)
            speech_emb = speech_emb + t3.speech_pos_emb(start)
        out = torch.cat([text_emb, speech_emb], dim=1)
        if self.turbo:
            return out
        bos = t3.speech_emb(start[:1]) + t3.speech_pos_emb.get_fixed_embedding(0)
        return torch.cat([out, torch.cat([bos, bos])], dim=1)

    def _step(self) -> None:
        d = self.decoder
        jobs = list(self._active.values())
        top = max(self._active) + 1
        t0 = time.perf_counter()
        # Host-side per-row inputs, then one copy each: cheap next to the step itself.
        R = d.rows_per_slot
        n_rows = R * d.buckets_for(top, 0)[0]
        tok = torch.full((n_rows,), self.hp.start_speech_token, dtype=torch.long)
        spos = torch.zeros(n_rows, dtype=torch.long)
        cpos = torch.zeros(n_rows, dtype=torch.long)
        for job in jobs:
            r = R * job.slot
            tok[r : r + R] = job.last_token
            spos[r : r + R] = job.emitted
            cpos[r : r + R] = job.cache_pos
        d.tok[:n_rows].copy_(tok, non_blocking=True)
        d.speech_pos[:n_rows].copy_(spos, non_blocking=True)
        d.cache_pos[:n_rows].copy_(cpos, non_blocking=True)
        logits = d.decode(top, max(job.cache_pos for job in jobs))
        slots = [job.slot for job in jobs]
        rows = torch.tensor(d.rows_of(slots), device=d.device)
        chosen = self.choose(logits[rows], torch.tensor(slots, device=d.device), self.sampling, self.generator)
        for job in jobs:
            job.cache_pos += 1
        self._deliver(jobs, chosen)
        self.steps += 1
        self.last_step_s = time.perf_counter() - t0
        self.step_s_total += self.last_step_s

    def _deliver(self, jobs: list[DecodeJob], chosen: torch.Tensor) -> None:
        for job, token in zip(jobs, chosen.tolist(), strict=True):
            job.emitted += 1
            job.last_token = token
            self.tokens_out += 1
            stop = self.hp.stop_speech_token
            if job.stop_on_eos and token == stop:
                self._finish(job)
                continue
            if job.buffered:
                job.buffer.append(token)
                if len(job.buffer) >= job.wake_at:
                    job.wake_at = 1 << 30
                    job.tokens.put(WAKE)
            else:
                job.tokens.put(token)
            out_of_room = job.cache_pos + 1 >= self.decoder.shape.max_len
            out_of_speech_pos = self.max_speech_pos is not None and job.emitted + 1 >= self.max_speech_pos
            if job.emitted >= job.max_new_tokens or out_of_room or out_of_speech_pos:
                self._finish(job)

    def _drop_cancelled(self) -> None:
        for job in [j for j in self._active.values() if j.cancelled.is_set()]:
            self._finish(job)

    def _finish(self, job: DecodeJob) -> None:
        if job.finished:
            return
        job.finished = True
        with self._cv:
            if self._active.get(job.slot) is job:
                del self._active[job.slot]
            if job.slot >= 0 and job.slot not in self._active and job.slot not in self._free:
                self._free.append(job.slot)
                self._free.sort()
        job.tokens.put(FINISHED)
