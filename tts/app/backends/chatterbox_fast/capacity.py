"""Admission from measured capacity: how many streams this GPU keeps in real time.

Timed at start-up on the loaded model (seconds, before /ready): decode steps at several batch
sizes and S3Gen windows at several batch sizes. A stream of audio needs, per second, 25 decode
steps (shared with the batch) and the vocoding of 25 tokens (batched across streams). The
capacity is the largest n whose combined GPU time per second stays under 1/headroom.
"""

from __future__ import annotations

import time

import torch

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
