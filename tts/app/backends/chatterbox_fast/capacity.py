"""Admission from measured capacity: how many streams this GPU keeps in real time.

Measured at start-up on the loaded model, before /ready, in two steps:

- ``measure``, the timing model (seconds): decode steps and S3Gen windows timed at several
  batch sizes. A stream needs, per second of audio, 25 decode steps (shared with the batch)
  and the vocoding of 25 tokens (batched across streams); n streams fit while their GPU time
  per second stays under 1/headroom. It cannot see what load does to a decode step.
- ``probe_capacity``, by load (17-27 s on an H200): that estimate starts a search over stream
  counts, each probe real callers streaming sentences through the engine (``load_test``);
  the capacity is the most callers whose every sentence ran at RTF < 1 and played gap-free.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
import time

import torch

log = logging.getLogger(__name__)

TOKENS_PER_SECOND = 25


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_decode_step(engine, n_slots: int, cache_pos: int, reps: int = 20) -> float:
    d = engine.decoder
    rows = d.rows_per_slot * d.buckets_for(n_slots, cache_pos)[0]
    d.cache_pos[:rows].fill_(cache_pos)
    pos_emb = getattr(d.t3, "speech_pos_emb", None)
    d.speech_pos[:rows].fill_(min(cache_pos, pos_emb.emb.num_embeddings - 1) // 2 if pos_emb is not None else 0)
    d.tok[:rows].fill_(d.t3.hp.start_speech_token)
    d.decode(n_slots, cache_pos)
    _sync(d.device)
    t0 = time.perf_counter()
    for _ in range(reps):
        d.decode(n_slots, cache_pos)
    _sync(d.device)
    return (time.perf_counter() - t0) / reps


def time_vocoder(engine, n: int, window_tokens: int, reps: int = 2) -> float | None:
    voice = engine._default_conds
    if voice is None:
        return None
    from tts.app.backends.chatterbox_fast.vocoder import trim_reference

    ref = trim_reference(voice.gen, engine.config.s3gen_prompt_tokens)
    g = torch.Generator().manual_seed(0)
    windows = [torch.randint(0, 6561, (window_tokens,), generator=g).tolist() for _ in range(n)]
    engine.vocoder.render(ref, windows, [False] * n)
    _sync(engine.device)
    t0 = time.perf_counter()
    for _ in range(reps):
        engine.vocoder.render(ref, windows, [False] * n)
    _sync(engine.device)
    return (time.perf_counter() - t0) / reps


def sentence_windows(plan, tokens: int) -> list[int]:
    """Window lengths the stitcher plans for one sentence of ``tokens`` speech tokens."""
    from tts.app.backends.chatterbox_fast.vocoder import StreamStitcher

    st, out, planned = StreamStitcher(plan), [], 0
    while st.planned_tokens + plan.next_size(planned) < tokens:
        start, end = st.plan_window(st.planned_tokens + plan.next_size(planned), final=False)
        out.append(end - start)
        planned += 1
    start, end = st.plan_window(tokens, final=True)
    out.append(end - start)
    return out


def measure(engine, *, headroom: float, prompt_len: int | None, audio_s: float) -> dict:
    """GPU seconds per wall second for n streams speaking sentences of ``audio_s`` back to back.

    ``prompt_len``: T3 prompt positions (None: the model's conditioning + 86 text tokens).
    """
    from tts.app.backends.chatterbox_fast.decoder import conditioning_len

    if prompt_len is None:
        prompt_len = conditioning_len(engine.decoder.t3.hp) + 86
    sentence = int(audio_s * TOKENS_PER_SECOND)
    windows = sentence_windows(engine.config.plan, sentence)
    mean_window = round(sum(windows) / len(windows))
    mid_pos = prompt_len + sentence // 2
    points = []
    wanted = (1, 8, 16, 24, 32, 48, 64, 96, 128)
    for n in [b for b in engine.decoder.slot_buckets if b in wanted or b == max(engine.decoder.slot_buckets)]:
        step = time_decode_step(engine, n, mid_pos)
        voc = time_vocoder(engine, min(n, engine.vocoder.max_batch), mean_window)
        # Windows of n streams batch together (up to the vocoder's batch limit).
        batches_per_s = len(windows) / audio_s * max(1.0, n / engine.vocoder.max_batch)
        load = TOKENS_PER_SECOND * step + (voc or 0.0) * batches_per_s
        points.append(
            {
                "streams": n,
                "decode_step_s": round(step, 5),
                "vocode_batch_s": voc and round(voc, 4),
                "gpu_load": round(load, 3),
            }
        )
    budget = 1.0 / headroom
    capacity = 0
    for p in points:
        if p["gpu_load"] <= budget:
            capacity = p["streams"]
    return {
        "capacity_streams": capacity,
        "headroom": headroom,
        "sentence_windows": windows,
        "points": points,
        "vocoder_measured": points[0]["vocode_batch_s"] is not None,
    }


# ---- measured by load: callers streaming through the engine itself ----

GAP_SLACK_S = 0.05  # a chunk this late after the audio before it ran out is not heard as a gap


def play(engine, tokens: int, *, start=None, delay: float = 0.0) -> dict:
    """One caller: a sentence of exactly ``tokens`` speech tokens through ``engine.stream``,
    played back as it arrives. ``underrun_s``: silence heard between chunks."""
    from tts.app.backends.chatterbox_engine import ChatterboxCall

    call = ChatterboxCall(
        text=PROBE_SENTENCE, audio_prompt_path=None, kwargs={"max_new_tokens": tokens, "stop_on_eos": False}
    )
    if start is not None:
        start.wait()
    time.sleep(delay)
    t0 = time.perf_counter()
    arrivals = []
    for chunk in engine.stream(call, threading.Event()):
        arrivals.append((time.perf_counter() - t0, len(chunk)))
    wall = time.perf_counter() - t0
    audio_s = sum(n for _, n in arrivals) / engine.sample_rate
    underrun, played_until = 0.0, None
    for t, n in arrivals:
        if played_until is None:
            played_until = t
        elif t > played_until:
            underrun += t - played_until
            played_until = t
        played_until += n / engine.sample_rate
    return {
        "ttfa_s": arrivals[0][0] if arrivals else None,
        "wall_s": wall,
        "audio_s": audio_s,
        "rtf": wall / audio_s if audio_s else None,
        "underrun_s": underrun,
        "chunks": len(arrivals),
    }


PROBE_SENTENCE = "Hi, this is Ava from Riverside Dental, calling about your appointment tomorrow."


def load_test(
    engine, n: int, *, tokens: int = 75, sentences: int = 2, stagger_s: float = 3.0, timeout_s: float = 120.0
) -> dict:
    """``n`` callers whose starts spread over ``stagger_s`` (calls arrive independently), each
    speaking ``sentences`` of ``tokens`` back to back. Passes when every sentence of every
    caller ran at RTF < 1 and played without a gap."""
    start = threading.Event()
    out: list[list[dict]] = [[] for _ in range(n)]

    def caller(i: int) -> None:
        try:
            for k in range(sentences):
                out[i].append(
                    play(engine, tokens, start=start if k == 0 else None, delay=stagger_s * i / n if k == 0 else 0.0)
                )
        except Exception as exc:  # a failed stream fails the probe; the reason is reported
            out[i].append({"error": repr(exc)[:200]})

    threads = [threading.Thread(target=caller, args=(i,), daemon=True, name=f"capacity-probe-{i}") for i in range(n)]
    for t in threads:
        t.start()
    start.set()
    deadline = time.monotonic() + timeout_s
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()))
    stuck = sum(t.is_alive() for t in threads)
    rows = [r for rs in out for r in rs]
    errors = [r["error"] for r in rows if "error" in r]
    done = [r for r in rows if "error" not in r and r["rtf"] is not None]
    slow = sum(1 for r in done if r["rtf"] >= 1)
    gaps = sum(1 for r in done if r["underrun_s"] >= GAP_SLACK_S)
    ttfa = sorted(r["ttfa_s"] for r in done)
    complete = not stuck and not errors and len(done) == n * sentences
    return {
        "streams": n,
        "passed": complete and slow == 0 and gaps == 0,
        "sentences_slow": slow,
        "sentences_with_gaps": gaps,
        "rtf_max": round(max((r["rtf"] for r in done), default=0.0), 3),
        "underrun_s_max": round(max((r["underrun_s"] for r in done), default=0.0), 3),
        "ttfa_median_s": round(statistics.median(ttfa), 3) if ttfa else None,
        "ttfa_p95_s": round(ttfa[math.ceil(0.95 * len(ttfa)) - 1], 3) if ttfa else None,
        "errors": len(errors) + stuck,
        "first_error": errors[0] if errors else ("callers still streaming at the probe's timeout" if stuck else None),
    }


STEP = 1.5  # the search's stride away from the estimate, as a factor of stream count


def search(passes, candidates: list[int], start: int, *, max_probes: int = 6) -> tuple[int, list[int]]:
    """The largest candidate for which ``passes(n)`` holds, assuming it holds up to some n and
    fails beyond. Starts at the candidate nearest ``start`` (an estimate), steps away from it
    by a factor of ``STEP`` until the answer flips, then bisects between the last pass and
    the first fail. At most ``max_probes`` calls. Returns (capacity, the n probed in order);
    0 if the smallest candidate probed failed and none below it was left to try."""
    cands = sorted(set(candidates))
    if not cands:
        raise ValueError("no stream counts to probe")
    probed: list[int] = []

    def probe(i: int) -> bool:
        probed.append(cands[i])
        return bool(passes(cands[i]))

    def nearest(value: float) -> int:
        return min(range(len(cands)), key=lambda k: abs(cands[k] - value))

    i = nearest(start)
    lo, hi = -1, len(cands)  # indices: lo passed (or none), hi failed (or none probed)
    if probe(i):
        lo = i
        while lo + 1 < len(cands) and len(probed) < max_probes:
            j = max(nearest(cands[lo] * STEP), lo + 1)
            if not probe(j):
                hi = j
                break
            lo = j
    else:
        hi = i
        while hi > 0 and len(probed) < max_probes:
            j = min(nearest(cands[hi] / STEP), hi - 1)
            if probe(j):
                lo = j
                break
            hi = j
    while hi - lo > 1 and hi < len(cands) and len(probed) < max_probes:
        mid = (lo + hi) // 2 if lo >= 0 else hi // 2
        if mid == lo or mid >= hi:
            break
        if probe(mid):
            lo = mid
        else:
            hi = mid
    return (cands[lo] if lo >= 0 else 0), probed


def probe_capacity(
    engine,
    *,
    estimate: int,
    stagger_s: float = 3.0,
    light_streams: int | None = None,
    max_probes: int = 6,
    load=load_test,
) -> dict:
    """Capacity measured by load, for the policy the engine serves with.

    1. The standard plan alone: ``capacity_streams``, the most callers it keeps real-time
       and gap-free (the search starts from ``estimate``, the timing model's figure).
    2. Unless ``light_streams`` is given (configured), the light plan alone (every caller's
       first window ``light_first_tokens``: first audio sooner, more vocoder work per
       sentence), up to the capacity: ``light_streams``.
    3. The serving policy (the light plan while at most ``light_streams`` stream, the
       standard one beyond) at the full capacity, once. If it fails there, the short first
       window would cost callers (on the H200, Chatterbox's 32 would become 16: its vocoder
       is the bottleneck), so it is dropped: ``light_streams`` 0, and the report says so.

    Each probe is ``load`` (``load_test``), each search ``search``."""
    slots = engine.config.max_slots
    cands = [b for b in engine.decoder.slot_buckets if b <= slots] or [slots]
    rows: dict[str, list[dict]] = {"standard": [], "light": [], "serving": []}

    def passes(kind: str):
        def run(n: int) -> bool:
            row = load(engine, n, stagger_s=stagger_s)
            rows[kind].append(row)
            log.info("capacity probe (%s): %s", kind, row)
            return row["passed"]

        return run

    engine.light_streams = 0  # everyone on the standard plan
    capacity, _ = search(passes("standard"), cands, max(1, estimate), max_probes=max_probes)
    if engine.config.light_plan is None or not capacity:
        light_streams = 0
    elif light_streams is None:
        engine.light_streams = slots  # everyone on the light plan
        below = [b for b in cands if b <= capacity]
        light_streams, _ = search(passes("light"), below, max(1, capacity // 2), max_probes=max_probes)
    else:
        light_streams = min(light_streams, capacity)
    if light_streams:
        engine.light_streams = light_streams
        if not passes("serving")(capacity):
            log.warning(
                "the short first window (%d tokens while at most %d stream) failed at the %d "
                "streams the standard plan keeps real-time: every sentence starts with %d tokens",
                engine.config.light_plan.first_tokens,
                light_streams,
                capacity,
                engine.config.plan.first_tokens,
            )
            light_streams = 0
    engine.light_streams = light_streams
    return {
        "capacity_streams": capacity,
        "light_streams": light_streams,
        "light_dropped": bool(rows["serving"]) and not rows["serving"][-1]["passed"],
        "light_first_tokens": engine.config.light_plan.first_tokens if engine.config.light_plan else None,
        "first_tokens": engine.config.plan.first_tokens,
        "stagger_s": stagger_s,
        "probes": rows,
    }
