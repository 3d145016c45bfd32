"""Chatterbox vs Chatterbox-Turbo: compute per second of audio, part by part, on the CPU.

Runs in .venv-chatterbox (tests/tts_chatterbox/setup_env.sh). RANDOM WEIGHTS, real
architectures: the speed of the math, not quality. Times the fast engine's own parts, eagerly:

- one S3Gen render (``S3GenRenderer.forward``: flow encoder, flow matching, HiFi-GAN) of a
  streaming window, with a 10 s reference prompt: Chatterbox's S3Gen (10 steps, CFG: 2 rows)
  vs Turbo's distilled one (meanflow: 2 steps, 1 row);
- one T3 decode step (``T3BatchDecoder``) at the same number of streams: Chatterbox's Llama
  520M (2 cache rows per stream, CFG) vs Turbo's GPT-2 medium (1 row);
- admitting requests (T3 prefill): the whole prompt from scratch vs after the voice's cached
  conditioning (34 positions for Chatterbox, 376 for Turbo), which is what the engine does.

A CPU is not a GPU (no launch overhead, no tensor cores), so the figures to carry over are
the *ratios* of the two variants' work; GPU throughput must be measured on the GPU
(bench/tts_chatterbox_gpu.py --model turbo). Prints one JSON line per figure, then a summary.

  .venv-chatterbox/bin/python bench/chatterbox_variant_cost.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from doubles.tiny_chatterbox import random_s3gen_reference, turbo_hparams  # noqa: E402

PROMPT_TOKENS = 250  # S3Gen's 10 s reference (25 tokens/s)
SPT = 960  # samples per speech token at 24 kHz


def best(fn, reps: int) -> float:
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def s3gen_cost(meanflow: bool, windows: list[int], rows: list[int], reps: int) -> list[dict]:
    from chatterbox.models.s3gen import S3Gen

    from tts.app.backends.chatterbox_fast.s3gen_render import S3GenRenderer

    torch.manual_seed(0)
    s3gen = S3Gen(meanflow=meanflow).eval()
    ref = random_s3gen_reference(PROMPT_TOKENS)
    g = torch.Generator().manual_seed(2)
    r = S3GenRenderer(s3gen, cuda_graphs=False)
    voice = r.voice(ref)
    out = []
    for w in windows:
        for n in rows:
            tok = torch.randint(0, 6561, (n, w), generator=g)
            lens = torch.full((n,), w)
            with torch.inference_mode():
                s = best(
                    lambda t=tok, n_=lens: r.forward(t, n_, voice.prompt_token, voice.prompt_feat, voice.spks), reps
                )
            out.append(
                {"window_tokens": w, "windows": n, "render_s": round(s, 4), "s_per_audio_s": round(s / (n * w / 25), 4)}
            )
    return out


def build_t3(turbo: bool):
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config

    torch.manual_seed(0)
    hp = turbo_hparams() if turbo else T3Config.english_only()  # turbo: as ChatterboxTurboTTS.from_local
    return T3(hp).eval()


def t3_cost(turbo: bool, streams: list[int], reps: int) -> list[dict]:
    from tts.app.backends.chatterbox_fast.decoder import DecoderShape, T3BatchDecoder, conditioning_len

    t3 = build_t3(turbo)
    hp = t3.hp
    pos = conditioning_len(hp) + 20 + 40  # mid-sentence: conditioning, ~20 text tokens, 40 speech tokens
    max_len = 1536 if turbo else 1024
    d = T3BatchDecoder(t3, DecoderShape(max(streams), max_len, (max_len,)), dtype=torch.float32, device="cpu")
    out = []
    for n in streams:
        rows = d.rows_per_slot * n
        d.cache_pos[:rows].fill_(pos)
        d.speech_pos[:rows].fill_(40)
        d.tok[:rows].fill_(hp.start_speech_token)
        with torch.inference_mode():
            s = best(lambda n=n: d._step(d.rows_per_slot * n, pos + 1), reps)
        out.append(
            {"streams": n, "cache_rows": rows, "step_s": round(s, 4), "s_per_audio_s_per_stream": round(25 * s / n, 4)}
        )
    params = sum(p.numel() for p in t3.tfmr.parameters())
    return [{"backbone_params_m": round(params / 1e6, 1)}, *out]


def prefill_cost(turbo: bool, joiners: list[int], reps: int, text_tokens: int = 20) -> list[dict]:
    """Admitting ``n`` requests of one voice: whole prompts vs text + BOS after cached conditioning."""
    from chatterbox.models.t3.modules.cond_enc import T3Cond

    from tts.app.backends.chatterbox_fast.decoder import DecoderShape, T3BatchDecoder
    from tts.app.backends.chatterbox_fast.scheduler import DecodeJob, DecodeScheduler

    t3 = build_t3(turbo)
    hp = t3.hp
    d = T3BatchDecoder(
        t3, DecoderShape(max(joiners), 1536 if turbo else 1024, (1024,)), dtype=torch.float32, device="cpu"
    )
    sched = DecodeScheduler(d)
    g = torch.Generator().manual_seed(0)
    n_prompt = 375 if turbo else hp.speech_cond_prompt_len
    cond = T3Cond(
        speaker_emb=torch.randn(1, hp.speaker_embed_size, generator=g),
        cond_prompt_speech_tokens=torch.randint(0, 6561, (1, n_prompt), generator=g),
        emotion_adv=0.5 * torch.ones(1, 1, 1),
    )
    ids = torch.randint(10, 600, (1, text_tokens), generator=g)
    text = ids if turbo else torch.cat([ids, ids])
    out = []
    for n in joiners:
        jobs = [DecodeJob(text_tokens=text, t3_cond=cond, prefix_key="voice") for _ in range(n)]
        with torch.inference_mode():
            prompts = [sched._prompt_embeds(job) for job in jobs]
            slots = list(range(n))

            def whole(prompts=prompts, slots=slots):  # one batch: the prompts have one length here
                e = torch.cat([p for p, _ in prompts])
                d._layers(
                    e, torch.arange(e.shape[1])[None].expand(e.shape[0], -1), torch.tensor(d.rows_of(slots)), None
                )

            def cached(jobs=jobs, prompts=prompts, slots=slots):
                prefixes, suffixes = sched.join_inputs(jobs)
                d.prefill(prefixes, suffixes, slots)

            out.append(
                {
                    "joiners": n,
                    "prompt_positions": prompts[0][0].shape[1],
                    "cached_positions": prompts[0][1],
                    "whole_prompt_s": round(best(whole, reps), 4),
                    "after_cached_conditioning_s": round(best(cached, reps), 4),
                }
            )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--parts", default="s3gen,t3,prefill")
    args = ap.parse_args()
    parts = set(args.parts.split(","))
    torch.set_num_threads(args.threads)
    results: dict = {
        "threads": args.threads,
        "weights": "random (real architecture); speed only",
        "torch": torch.__version__,
    }

    def emit(key: str, value) -> None:
        results[key] = value
        print(json.dumps({key: value}), flush=True)

    ratio = {}
    if "s3gen" in parts:
        windows, rows = [24, 100], [1, 4]
        emit("s3gen_chatterbox", s3gen_cost(False, windows, rows, args.reps))
        emit("s3gen_turbo", s3gen_cost(True, windows, rows, args.reps))
        for a, b in zip(results["s3gen_chatterbox"], results["s3gen_turbo"], strict=True):
            ratio[f"s3gen_w{a['window_tokens']}_x{a['windows']}"] = round(a["render_s"] / b["render_s"], 2)
    if "t3" in parts:
        emit("t3_chatterbox", t3_cost(False, [1, 8], args.reps))
        emit("t3_turbo", t3_cost(True, [1, 8], args.reps))
        for a, b in zip(results["t3_chatterbox"][1:], results["t3_turbo"][1:], strict=True):
            ratio[f"t3_step_x{a['streams']}"] = round(a["step_s"] / b["step_s"], 2)
    if "prefill" in parts:
        emit("prefill_chatterbox", prefill_cost(False, [1, 4], args.reps))
        emit("prefill_turbo", prefill_cost(True, [1, 4], args.reps))
    if ratio:
        emit("chatterbox_over_turbo", ratio)


if __name__ == "__main__":
    main()
