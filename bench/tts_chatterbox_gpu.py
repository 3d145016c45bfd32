"""Chatterbox on one GPU: stock chatterbox-tts 0.1.7 vs the fast engine, side by side.

RANDOM WEIGHTS: the real architecture (T3 Llama 520M, S3Gen, voice encoder; with --model
turbo, Chatterbox-Turbo's GPT-2 T3 and 2-step meanflow S3Gen) randomly initialised, as ../shared/tools/chatterbox-gpu-baseline does (no weights can be downloaded
here). Random weights never emit the stop token, so every request is forced to a fixed
number of speech tokens (25 tokens = 1 s of audio). Figures are speed, not quality.

Run with the `device` tool (see docs/benchmarks.md, "Chatterbox on GPU"):
  python3 bench/tts_chatterbox_gpu.py [--out results.json]
Prints one JSON line per measurement and a summary.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import faulthandler
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts.app.backends.chatterbox_fast.capacity import PROBE_SENTENCE as SENTENCE  # noqa: E402
from tts.app.backends.chatterbox_fast.capacity import play  # noqa: E402  (one caller's sentence, timed as it plays)

TOKENS = 75  # 3.0 s of audio: one sentence
SAMPLES_PER_TOKEN = 960
FIRST_TOKENS = 24  # --first-tokens: the first window (time to first audio vs. the buffer it builds)


OUT_PATH: Path | None = None  # --out: rewritten after every figure, so a stalled run keeps what it measured


def emit(results: dict, key: str, value) -> None:
    results[key] = value
    print(json.dumps({key: value}), flush=True)
    if OUT_PATH is not None:
        OUT_PATH.write_text(json.dumps(results, indent=1))


def build_model(dev: str, variant: str = "english"):
    if variant == "turbo":
        return build_turbo_model(dev)
    import numpy as np
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3GEN_SR, S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.tokenizers import EnTokenizer
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts import ChatterboxTTS
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers

    torch.manual_seed(0)
    tmp = tempfile.mkdtemp()
    specials = ["[START]", "[STOP]", "[UNK]", "[SPACE]", "[PAD]", "[SEP]", "[CLS]", "[MASK]"]
    vocab = {t: i for i, t in enumerate(specials + [chr(c) for c in range(33, 127)])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tk.add_special_tokens(specials)
    tk.save(f"{tmp}/tokenizer.json")
    model = ChatterboxTTS(T3(), S3Gen(), VoiceEncoder(), EnTokenizer(f"{tmp}/tokenizer.json"), dev)
    model.t3.to(dev).eval()
    model.s3gen.to(dev).eval()
    model.ve.to(dev).eval()
    sf.write(f"{tmp}/ref.wav", (0.1 * np.random.randn(S3GEN_SR * 8)).astype(np.float32), S3GEN_SR)
    model.prepare_conditionals(f"{tmp}/ref.wav", exaggeration=0.5)
    return model


def build_turbo_model(dev: str):
    """ChatterboxTurboTTS as from_local builds it (T3 hp, meanflow S3Gen), random weights.

    Its GPT-2 BPE tokenizer files cannot be downloaded: a word-level tokenizer over the bench
    sentence stands in, giving about as many text tokens as GPT-2's BPE would (~18)."""
    import numpy as np
    import soundfile as sf
    import torch
    from chatterbox.models.s3gen import S3GEN_SR, S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    from doubles.tiny_chatterbox import turbo_hparams

    torch.manual_seed(0)
    tmp = tempfile.mkdtemp()
    hp = turbo_hparams()
    words = sorted(set(pre_tokenizers.Whitespace().pre_tokenize_str(SENTENCE + " " + SENTENCE[:30])) | {("[UNK]", 0)})
    vocab = {w: i for i, w in enumerate(sorted({w for w, _ in words}))}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[UNK]")
    model = ChatterboxTurboTTS(T3(hp), S3Gen(meanflow=True), VoiceEncoder(), tokenizer, dev)
    model.t3.to(dev).eval()
    model.s3gen.to(dev).eval()
    model.ve.to(dev).eval()
    # A 15 s clip: Turbo's T3 then takes its full 375-token speech prompt, S3Gen its 10 s.
    sf.write(f"{tmp}/ref.wav", (0.1 * np.random.randn(S3GEN_SR * 15)).astype(np.float32), S3GEN_SR)
    model.prepare_conditionals(f"{tmp}/ref.wav", norm_loudness=False)
    return model


def sync():
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def bench_stock(model, results: dict) -> None:
    """Upstream path as the baseline tool times it: T3.inference (HF, CFG) then S3Gen.inference
    (Turbo: T3.inference_turbo, then S3Gen's 2 meanflow steps, as ChatterboxTurboTTS.generate)."""
    import torch
    import torch.nn.functional as F

    turbo = model.t3.is_gpt

    def t3_tokens(n: int):
        if turbo:
            tt = model.tokenizer(SENTENCE, return_tensors="pt").input_ids.to(model.device)
            # Random weights never stop: inference_turbo's own cap forces the length.
            return model.t3.inference_turbo(t3_cond=model.conds.t3, text_tokens=tt, max_gen_len=n - 1)[0]
        from chatterbox.tts import punc_norm

        tt = model.tokenizer.text_to_tokens(punc_norm(SENTENCE)).to(model.device)
        tt = torch.cat([tt, tt], dim=0)
        tt = F.pad(F.pad(tt, (1, 0), value=model.t3.hp.start_text_token), (0, 1), value=model.t3.hp.stop_text_token)
        return model.t3.inference(
            t3_cond=model.conds.t3, text_tokens=tt, max_new_tokens=n, stop_on_eos=False, cfg_weight=0.5
        )[0]

    def once(n: int):
        sync()
        a = time.perf_counter()
        with torch.inference_mode():
            toks = t3_tokens(n)
            sync()
            b = time.perf_counter()
            toks = toks[toks < 6561]
            wav, _ = model.s3gen.inference(
                speech_tokens=toks, ref_dict=model.conds.gen, n_cfm_timesteps=2 if turbo else None
            )
        sync()
        c = time.perf_counter()
        return b - a, c - b, wav.shape[-1] / model.sr

    once(25)  # warm-up
    runs = [once(TOKENS) for _ in range(2)]
    t3_s = min(r[0] for r in runs)
    s3_s = min(r[1] for r in runs)
    audio_s = runs[0][2]
    total = t3_s + s3_s
    emit(
        results,
        "stock_one_sentence",
        {
            "speech_tokens": TOKENS,
            "t3_s": round(t3_s, 3),
            "s3gen_s": round(s3_s, 3),
            "audio_s": round(audio_s, 2),
            "time_to_first_audio_s": round(total, 3),  # non-streaming: first audio = whole clip
            "rtf": round(total / audio_s, 3),
            "t3_tokens_per_s": round(TOKENS / t3_s, 1),
            # One model instance serves one request at a time (generate mutates model.conds).
            "concurrent_streams_rtf_below_1": int(audio_s // total),
        },
    )


@contextlib.contextmanager
def noise_off():
    """torch's random draws return zeros inside the block (flow matching's noise): two renders of
    the same tokens are then comparable number for number."""
    import torch

    saved = torch.randn_like, torch.rand_like, torch.rand, torch.randn

    def zeros(*shape, **k):
        return torch.zeros(*shape, **{x: y for x, y in k.items() if x != "generator"})

    torch.randn_like = torch.rand_like = lambda t, *a, **k: torch.zeros_like(t, *a, **k)
    torch.rand = torch.randn = zeros
    try:
        yield
    finally:
        torch.randn_like, torch.rand_like, torch.rand, torch.randn = saved


def check_render_graph(model, results: dict) -> None:
    """The captured whole-render graph vs the same render run eagerly (noise off: zeros)."""
    import torch

    from tts.app.backends.chatterbox_fast import s3gen_patches
    from tts.app.backends.chatterbox_fast.s3gen_render import S3GenRenderer

    s3gen_patches.install(model.s3gen)
    with noise_off():
        r = S3GenRenderer(model.s3gen, max_rows=4)
        voice = r.voice(model.conds.gen)
        g = torch.Generator().manual_seed(0)
        wins = [torch.randint(0, 6561, (n,), generator=g).tolist() for n in (66, 40, 24)]
        graphed = r.render(voice, wins)
        tok = torch.zeros(len(wins), 80, dtype=torch.long)
        for i, w in enumerate(wins):
            tok[i, : len(w)] = torch.tensor(w)
        lens = torch.tensor([len(w) for w in wins])
        with torch.inference_mode():
            sync()
            a = time.perf_counter()
            eager = r.forward(tok.cuda(), lens.cuda(), voice.prompt_token, voice.prompt_feat, voice.spks)
            sync()
            eager_s = time.perf_counter() - a
            a = time.perf_counter()
            r.render(voice, wins)
            sync()
            graph_s = time.perf_counter() - a
        diff = max(
            (graphed[i, : n * 960] - eager[i, : n * 960]).abs().max().item() for i, n in enumerate(lens.tolist())
        )
        emit(
            results,
            "render_graph_check",
            {
                "graphs": r.captured,
                "max_abs_diff": diff,
                "peak": eager.abs().max().item(),
                "eager_s": round(eager_s, 4),
                "graph_s": round(graph_s, 4),
            },
        )


WINDOW_TOKENS = 66  # --window-tokens: the window the lever measurements render


def s3gen_levers(model, results: dict, rows: list[int]) -> None:
    """Where an S3Gen render's time goes, and what each lever costs in output.

    Eager renders (no graph; synchronised), the reference prompt as served (the built-in
    voice's). Per batch size in ``rows`` (windows of WINDOW_TOKENS tokens):
    - seconds of the flow at 1 and at 10 steps (the difference / 9: one estimator step with
      its CFG row), of HiFi-GAN, each with and without bf16/fp16 autocast;
    - quality proxies on the same tokens and the same noise: the mel distance of n steps to the
      model's 10 (mean |log-mel difference| over the window's frames, and that over the mean
      |log-mel deviation| of the 10-step mels), and autocast's against float32, on the mels and
      on the waveform (relative RMS error). Random weights: the proxy measures the solver's and
      the rounding's error on this random velocity field, not how a trained voice sounds.
    """
    import torch

    from tts.app.backends.chatterbox_fast import s3gen_patches
    from tts.app.backends.chatterbox_fast.s3gen_render import S3GenRenderer

    dev = next(model.s3gen.parameters()).device
    s3gen_patches.install(model.s3gen)  # as BatchedVocoder serves it (device-side sine source)
    if dev.type == "cuda":  # and the estimator in the engine's default S3Gen dtype
        cfm = model.s3gen.flow.decoder
        getattr(cfm.estimator, "inner", cfm.estimator).to(dtype=torch.float16)
    renderers = {
        amp: S3GenRenderer(model.s3gen, cuda_graphs=False, autocast=amp) for amp in ("off", "bfloat16", "float16")
    }
    if dev.type != "cuda":
        del renderers["float16"]  # no half-precision convolutions on the CPU
    voice = renderers["off"].voice(model.conds.gen)
    g = torch.Generator().manual_seed(0)

    def timed(fn, reps: int):
        fn()
        sync()
        a = time.perf_counter()
        for _ in range(reps):
            out = fn()
        sync()
        return (time.perf_counter() - a) / reps, out

    reps = 3 if dev.type == "cuda" else 1
    steps_list = (10, 8, 6, 5, 4, 3)
    for n in rows:
        tok = torch.randint(0, 6561, (n, WINDOW_TOKENS), generator=g).to(dev)
        lens = torch.full((n,), WINDOW_TOKENS, dtype=torch.long, device=dev)
        args = (tok, lens, voice.prompt_token, voice.prompt_feat, voice.spks)
        row: dict = {"batch": n, "window_tokens": WINDOW_TOKENS, "prompt_tokens": voice.prompt_len}
        with torch.inference_mode():
            for amp, r in renderers.items():
                t1, _ = timed(lambda r=r, a=args: r.mels(*a, n_timesteps=1), reps)
                t10, mels = timed(lambda r=r, a=args: r.mels(*a, n_timesteps=10), reps)
                th, _ = timed(lambda r=r, m=mels: r._vocode(m), reps)
                step = (t10 - t1) / 9
                row[amp] = {
                    "flow_10_steps_s": round(t10, 4),
                    "estimator_step_s": round(step, 4),
                    "encoder_and_rest_s": round(t1 - step, 4),
                    "hifigan_s": round(th, 4),
                }
            emit(results, f"s3gen_parts_batch{n}", row)
            # Quality proxies: the same tokens and noise (one seed) for every render.
            base = renderers["off"]

            def mels_of(r, steps, a=args):
                torch.manual_seed(123)
                return r.mels(*a, n_timesteps=steps).float()

            ref = mels_of(base, 10)
            spread = (ref - ref.mean(dim=2, keepdim=True)).abs().mean().item()
            proxy = {"ref_mean_abs_deviation": round(spread, 4)}
            for steps in steps_list[1:]:
                d = (mels_of(base, steps) - ref).abs().mean().item()
                proxy[f"steps{steps}"] = {"mel_l1": round(d, 4), "mel_l1_rel": round(d / spread, 4)}
            torch.manual_seed(321)
            wav_ref = base._vocode(ref)
            for amp, r in renderers.items():
                if amp == "off":
                    continue
                m = mels_of(r, 10)
                torch.manual_seed(321)
                wav = r._vocode(ref)  # HiFi-GAN alone, on the same mels
                d = (m - ref).abs().mean().item()
                err = ((wav - wav_ref).pow(2).mean().sqrt() / wav_ref.pow(2).mean().sqrt()).item()
                proxy[amp] = {
                    "mel_l1": round(d, 5),
                    "mel_l1_rel": round(d / spread, 5),
                    "hifigan_wav_rms_err": round(err, 5),
                }
            emit(results, f"s3gen_quality_batch{n}", proxy)


def window_proxy(model, results: dict, firsts: list[int], steps: int = 0, tokens: int = TOKENS) -> None:
    """Quality proxy of a smaller first window: what the audio of a first window of F tokens
    loses by being rendered before the tokens after it exist (S3Gen's conformer attends to the
    whole window; the last 3 tokens are held back and rendered again with the next window).

    A sentence of ``tokens`` random speech tokens is rendered whole, then its first F tokens
    alone, noise switched off (zeros, as the render check does: every window draws fresh noise
    when served, which would hide the context effect); the first window's emitted frames (its
    F - 3 tokens before the hold-back) are compared with the same frames of the whole render:
    mean |log-mel difference| over the whole render's mean absolute deviation (the S3Gen
    proxy's measure), over all emitted frames and over the last 5 emitted tokens (nearest the
    cut). Random weights: the effect on this random network, not a trained voice's."""
    import torch

    from tts.app.backends.chatterbox_fast import s3gen_patches
    from tts.app.backends.chatterbox_fast.s3gen_render import S3GenRenderer

    dev = next(model.s3gen.parameters()).device
    s3gen_patches.install(model.s3gen)
    r = S3GenRenderer(model.s3gen, cuda_graphs=False, n_timesteps=steps or None)
    voice = r.voice(model.conds.gen)
    g = torch.Generator().manual_seed(0)
    sentence = torch.randint(0, 6561, (1, tokens), generator=g).to(dev)
    with noise_off(), torch.inference_mode():

        def mels(n: int):
            lens = torch.tensor([n], device=dev)
            return r.mels(sentence[:, :n], lens, voice.prompt_token, voice.prompt_feat, voice.spks).float()

        t0 = time.perf_counter()
        whole = mels(tokens)
        spread = (whole - whole.mean(dim=2, keepdim=True)).abs().mean().item()
        row: dict = {"tokens": tokens, "steps": r.n_timesteps, "ref_mean_abs_deviation": round(spread, 4)}
        for f in firsts:
            emitted = 2 * (f - 3)  # mel frames of the tokens the first window plays
            d = (mels(f)[..., :emitted] - whole[..., :emitted]).abs()
            row[f"first{f}"] = {
                "mel_l1_rel": round(d.mean().item() / spread, 4),
                "mel_l1_rel_last5_tokens": round(d[..., -10:].mean().item() / spread, 4),
            }
        row["seconds"] = round(time.perf_counter() - t0, 1)
    emit(results, "first_window_proxy", row)


def bench_fast(
    model,
    results: dict,
    stream_counts: list[int],
    prompt_tokens: int,
    full: bool,
    staggers: tuple[float, ...] = (0.0,),
    variants: list[tuple] | None = None,
) -> None:
    """``variants``: (S3Gen graph mode, vocoder batch limit, stream counts to sweep, first
    window tokens (0: default), GIL switch interval ms (0: Python's 5 ms), flow-matching steps
    (0: the model's), autocast (off|bfloat16|float16), first-audio levers (dict: apart,
    hold_s, early_s)) each; see ``parse_variant``."""
    import torch

    from tts.app.backends.chatterbox_fast.capacity import time_decode_step
    from tts.app.backends.chatterbox_fast.engine import FastChatterboxEngine, FastEngineConfig
    from tts.app.backends.chatterbox_fast.vocoder import ChunkPlan

    t0 = time.perf_counter()
    variants = variants or [("render", 8, stream_counts, 0, 0.0, 0, "off", dict(NO_LEVERS))]
    cfg = FastEngineConfig(
        s3gen_graphs=variants[0][0],
        vocoder_batch=variants[0][1],
        s3gen_steps=variants[0][5],
        s3gen_autocast=variants[0][6],
        max_slots=max(64, max(stream_counts)),
        watermark=False,
        s3gen_prompt_tokens=prompt_tokens,
        plan=ChunkPlan(first_tokens=FIRST_TOKENS),
        light_first_tokens=0,  # one plan per variant here; --probe measures the adaptive policy
    )
    engine = FastChatterboxEngine(model, cfg, generator_seed=0)
    tag = "fast" if prompt_tokens == 0 else f"fast_prompt{prompt_tokens}"

    def emit_tagged(results: dict, key: str, value) -> None:  # keys tagged per configuration
        emit(results, key.replace("fast", tag, 1), value)

    emit_tagged(
        results,
        "fast_engine_build_s",
        {
            "seconds": round(time.perf_counter() - t0, 2),
            "t3_cuda_graphs": engine.graphs,
            "s3gen_cuda_graphs": engine.vocoder_graphs,
            "t3_dtype": str(engine.t3_dtype),
        },
    )

    rows = []
    # Per-stream decode rate vs batch size (T3 only, graph replay; eager for contrast).
    from tts.app.backends.chatterbox_fast.decoder import conditioning_len

    prompt = conditioning_len(model.t3.hp) + 86
    for n in [] if not full else [b for b in engine.decoder.slot_buckets if b in (1, 2, 4, 8, 16, 32, 48, 64, 96, 128)]:
        step = time_decode_step(engine, n, prompt + 100)
        rows.append(
            {
                "batch": n,
                "step_ms": round(step * 1e3, 2),
                "tokens_per_s_per_stream": round(1 / step, 1),
                "tokens_per_s_total": round(n / step, 0),
            }
        )
    if full:
        emit_tagged(results, "fast_t3_decode_vs_batch", rows)
        saved = engine.decoder._graphs
        engine.decoder._graphs = {}
        eager = [
            {"batch": n, "eager_step_ms": round(time_decode_step(engine, n, prompt + 100, reps=5) * 1e3, 2)}
            for n in (1, 32)
        ]
        engine.decoder._graphs = saved
        emit_tagged(results, "fast_t3_eager_step", eager)

    # S3Gen window time vs batch for each vocoder variant, then the concurrency sweeps.
    from tts.app.backends.chatterbox_fast.vocoder import BatchedVocoder, trim_reference

    ref = trim_reference(model.conds.gen, prompt_tokens)
    prefill_graph_check(engine, results, emit_tagged)
    for vi, (graphs, vbatch, sweep_counts, first, switch_ms, steps, amp, lev) in enumerate(variants):
        vtag = (
            f"{graphs}_batch{vbatch}"
            + (f"_steps{steps}" if steps else "")
            + (f"_{amp}" if amp != "off" else "")
            + (f"_first{first}" if first else "")
            + (f"_gil{switch_ms}ms" if switch_ms else "")
            + ("_apart" if lev["apart"] else "")
            + (f"_hold{round(lev['hold_s'] * 1000)}ms" if lev["hold_s"] else "")
            + (f"_early{round(lev['early_s'] * 1000)}ms" if lev["early_s"] else "")
        )
        sys.setswitchinterval(switch_ms / 1000 if switch_ms else 0.005)
        engine.config = dataclasses.replace(
            engine.config,
            plan=dataclasses.replace(cfg.plan, first_tokens=first or cfg.plan.first_tokens),
            early_window_s=lev["early_s"],
        )
        if vi and (graphs, vbatch, steps, amp) != (*variants[vi - 1][:2], *variants[vi - 1][5:7]):
            engine.vocoder.stop()
            a = time.perf_counter()
            engine.vocoder = BatchedVocoder(
                model.s3gen,
                max_batch=vbatch,
                graphs=graphs,
                estimator_dtype=cfg.s3gen_dtype,
                n_cfm_timesteps=steps or None,
                autocast=amp,
            )
            n_graphs = engine.vocoder.warm_up(ref, cfg.plan)
            engine.vocoder.start()
            emit_tagged(
                results, f"fast_{vtag}_vocoder_build", {"s": round(time.perf_counter() - a, 1), "graphs": n_graphs}
            )
        # The first-audio levers are read per batch and per sentence: no rebuild between them.
        engine.vocoder.first_apart, engine.vocoder.hold_s = lev["apart"], lev["hold_s"]
        voc = []
        for n in (b for b in (1, 4, 8, 16) if b <= vbatch):
            g = torch.Generator().manual_seed(0)
            for length in (24, 66, 109):
                wins = [torch.randint(0, 6561, (length,), generator=g).tolist() for _ in range(n)]
                engine.vocoder.render(ref, wins, [False] * n)
                sync()
                a = time.perf_counter()
                for _ in range(3):
                    engine.vocoder.render(ref, wins, [False] * n)
                sync()
                voc.append({"batch": n, "window_tokens": length, "s": round((time.perf_counter() - a) / 3, 4)})
        emit_tagged(results, f"fast_{vtag}_s3gen_window_vs_batch", voc)
        for _ in range(2):  # warm-up (allocator, cuDNN algorithms of S3Gen shapes)
            play(engine, TOKENS)
        single = [play(engine, TOKENS) for _ in range(3)]
        emit_tagged(
            results,
            f"fast_{vtag}_one_sentence",
            {
                "speech_tokens": TOKENS,
                "time_to_first_audio_s": round(statistics.median(r["ttfa_s"] for r in single), 3),
                "wall_s": round(statistics.median(r["wall_s"] for r in single), 3),
                "audio_s": round(single[0]["audio_s"], 2),
                "rtf": round(statistics.median(r["rtf"] for r in single), 3),
                "chunks": single[0]["chunks"],
            },
        )
        for stagger_s in staggers:
            concurrency_sweep(engine, results, sweep_counts, stagger_s, emit_tagged, prefix=f"fast_{vtag}")
        emit_tagged(results, f"fast_{vtag}_capacity_measured", engine.measure_capacity(probe="model"))
    emit_tagged(results, "gpu_peak_mem_gib", round(torch.cuda.max_memory_allocated() / 2**30, 2))
    engine.close()


def bench_probe(
    model,
    results: dict,
    stream_counts: list[int],
    staggers: tuple[float, ...],
    light_first: int,
    *,
    s3gen_steps: int = 0,
    s3gen_autocast: str = "off",
    vocoder_batch: int = 8,
    levers: dict | None = None,
) -> None:
    """The engine as the server builds it: capacity measured by load at start-up (the standard
    plan's capacity, the light plan's limit, the policy checked at capacity), then the sweeps
    under the policy it serves with."""
    import torch

    from tts.app.backends.chatterbox_fast.engine import FastChatterboxEngine, FastEngineConfig
    from tts.app.backends.chatterbox_fast.vocoder import ChunkPlan

    cfg = FastEngineConfig(
        max_slots=max(64, max(stream_counts)),
        watermark=False,
        plan=ChunkPlan(first_tokens=FIRST_TOKENS),
        light_first_tokens=light_first,
        s3gen_steps=s3gen_steps,
        s3gen_autocast=s3gen_autocast,
        vocoder_batch=vocoder_batch,
        first_windows_apart=(levers or NO_LEVERS)["apart"],
        vocoder_hold_s=(levers or NO_LEVERS)["hold_s"],
        early_window_s=(levers or NO_LEVERS)["early_s"],
    )
    t0 = time.perf_counter()
    engine = FastChatterboxEngine(model, cfg, generator_seed=0)
    emit(
        results,
        "probe_engine",
        {
            "build_s": round(time.perf_counter() - t0, 1),
            "s3gen_steps": engine.vocoder.renderer.n_timesteps,
            "s3gen_autocast": s3gen_autocast,
            "s3gen_estimator_dtype": cfg.s3gen_dtype,
            "vocoder_batch": vocoder_batch,
            "max_slots": cfg.max_slots,
            "first_tokens": cfg.plan.first_tokens,
            "first_windows_apart": cfg.first_windows_apart,
            "vocoder_hold_s": cfg.vocoder_hold_s,
            "early_window_s": cfg.early_window_s,
        },
    )
    for _ in range(2):
        play(engine, TOKENS)
    report = engine.measure_capacity()
    model_points = report.pop("model")
    emit(results, "probe_capacity", {**report, "model_estimate": model_points["capacity_streams"]})
    emit(results, "probe_capacity_model_points", model_points["points"])
    light_before = engine.light_plans
    for stagger_s in staggers:
        concurrency_sweep(engine, results, stream_counts, stagger_s, emit, prefix="adaptive")
    emit(results, "adaptive_light_plan_sentences", engine.light_plans - light_before)
    emit(results, "gpu_peak_mem_gib", round(torch.cuda.max_memory_allocated() / 2**30, 2))
    engine.close()


def prefill_graph_check(engine, results: dict, emit_tagged) -> None:
    """T3 prefill (after the voice's cached conditioning) through its CUDA graphs vs eagerly:
    logits of 3 joiners, and the time; and the one-off cost of a voice's conditioning."""
    import torch

    voice = engine._voice(None)
    texts = [SENTENCE, SENTENCE[:30], SENTENCE + " " + SENTENCE]
    jobs = [engine.make_job(t, voice, {}) for t in texts]
    prompts = [engine.scheduler._prompt_embeds(job) for job in jobs]
    d = engine.decoder
    slots = [0, 1, 2]
    with torch.inference_mode():
        cond = prompts[0][0][:1, : prompts[0][1]]
        d.compute_prefix(cond)
        sync()
        a = time.perf_counter()
        d.compute_prefix(cond)  # once per voice (and exaggeration): a prefix-cache miss
        sync()
        prefix_s = time.perf_counter() - a
        prefixes, suffixes = engine.scheduler.join_inputs(jobs)

        def eager():
            d.load_prefixes(prefixes, slots)
            return d._prefill_eager(prefixes, suffixes, slots)

        times = {}
        for name, fn in (("graph", lambda: d.prefill(prefixes, suffixes, slots)), ("eager", eager)):
            fn()
            sync()
            a = time.perf_counter()
            out = fn()
            sync()
            times[name] = (time.perf_counter() - a, out)
    emit_tagged(
        results,
        "fast_prefill_graph_check",
        {
            "prompt_positions": [e.shape[1] for e, _ in prompts],
            "cached_conditioning_positions": [p.length for p in prefixes],
            "graphs": len(d._prefill_graphs),
            "max_abs_logit_diff": (times["graph"][1] - times["eager"][1]).abs().max().item(),
            "graph_ms": round(1e3 * times["graph"][0], 2),
            "eager_ms": round(1e3 * times["eager"][0], 2),
            "conditioning_once_per_voice_ms": round(1e3 * prefix_s, 2),
        },
    )


def engine_counters(engine) -> dict:
    s, v = engine.scheduler, engine.vocoder
    return {
        "steps": s.steps,
        "step_s": s.step_s_total,
        "prefills": s.prefills,
        "prefill_s": s.prefill_s_total,
        "prefix_hits": s.prefix_hits,
        "prefix_misses": s.prefix_misses,
        "busy_s": v.busy_s,
        "windows": v.windows,
        "batches": v.batches,
        "first_windows": v.first_windows,
        "first_wait_s": v.first_wait_s,
        "idle_capture_s": v.idle_capture_s,
        "captured": v.renderer.captured,
        "early_windows": engine.early_windows,
    }


def first_audio_breakdown(trace: list[dict]) -> dict:
    """Where first audio went (engine.first_audio_trace): median and p95, in ms, of T3's
    prefill (to its first token), the rest of the first window's tokens, the vocoder's queue,
    the render, and the hand-off to the caller's thread; each sentence's own phases."""
    if not trace:
        return {}
    phases = {
        "prefill": lambda r: r["first_token"],
        "t3_tokens": lambda r: r["window_submitted"] - r["first_token"],
        "vocoder_queue": lambda r: r["render_start"] - r["window_submitted"],
        "render": lambda r: r["rendered"] - r["render_start"],
        "handoff": lambda r: r["heard"] - r["rendered"],
        "total": lambda r: r["heard"],
    }
    out = {"sentences": len(trace)}
    for name, fn in phases.items():
        vals = sorted(fn(r) for r in trace if r.get("first_token") is not None)
        if vals:
            out[name] = [round(1e3 * statistics.median(vals), 1), round(1e3 * vals[int(0.95 * (len(vals) - 1))], 1)]
    out["window_tokens_median"] = statistics.median(r["window_tokens"] for r in trace)
    return out


def concurrency_sweep(
    engine, results: dict, stream_counts: list[int], stagger_s: float, emit_tagged, prefix: str = "fast"
) -> None:
    best = 0
    for n in stream_counts:
        start = threading.Event()
        out: list[list[dict]] = [[] for _ in range(n)]

        def caller(i: int, out=out, start=start, n=n) -> None:
            try:
                out[i].append(play(engine, TOKENS, start=start, delay=stagger_s * i / n))
                out[i].append(play(engine, TOKENS))
            except Exception as exc:  # recorded: a stalled or failed stream counts as not real-time
                out[i].append({"error": repr(exc)[:200]})

        before = engine_counters(engine)
        engine.first_audio_trace.clear()
        t_start = time.perf_counter()
        faulthandler.dump_traceback_later(50, exit=False)  # a stall shows every thread's stack
        threads = [threading.Thread(target=caller, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        start.set()
        for t in threads:
            t.join(timeout=300)
        faulthandler.cancel_dump_traceback_later()
        wall = time.perf_counter() - t_start
        d = {k: v - before[k] for k, v in engine_counters(engine).items()}
        errors = [r["error"] for rs in out for r in rs if "error" in r]
        flat = [r for rs in out for r in rs if "error" not in r] or [{"rtf": 99.0, "ttfa_s": 99.0, "underrun_s": 99.0}]
        rtfs = [r["rtf"] for r in flat]
        ttfa = sorted(r["ttfa_s"] for r in flat)
        ok = sum(1 for rs in out if all(r.get("rtf", 99) < 1 for r in rs))
        no_gap = sum(1 for rs in out if all(r.get("underrun_s", 99) < 0.05 for r in rs))
        row = {
            "streams": n,
            "streams_rtf_below_1": ok,
            "streams_without_gaps": no_gap,
            "rtf_median": round(statistics.median(rtfs), 3),
            "rtf_max": round(max(rtfs), 3),
            "ttfa_median_s": round(statistics.median(ttfa), 3),
            "ttfa_p95_s": round(ttfa[int(0.95 * (len(ttfa) - 1))], 3),
            "underrun_s_max": round(max(r["underrun_s"] for r in flat), 3),
            # Where the time went (engine counters over the sweep).
            "t3_step_ms_mean": round(1e3 * d["step_s"] / max(1, d["steps"]), 2),
            "t3_steps_per_s": round(d["steps"] / wall, 1),
            "prefill_ms_mean": round(1e3 * d["prefill_s"] / max(1, d["prefills"]), 1),
            "vocoder_busy_frac": round(d["busy_s"] / wall, 3),
            "vocoder_windows_per_batch": round(d["windows"] / max(1, d["batches"]), 2),
            "first_window_wait_ms_mean": round(1e3 * d["first_wait_s"] / max(1, d["first_windows"]), 1),
            # Graphs captured mid-sweep (shapes start-up missed) and the idle time they took.
            "early_windows": d["early_windows"],
            # First audio by phase: [median, p95] ms, each sentence's own (the engine's trace).
            "first_audio_ms": first_audio_breakdown(list(engine.first_audio_trace)),
            "graphs_captured": d["captured"],
            "idle_capture_s": round(d["idle_capture_s"], 2),
            "errors": len(errors),
            "first_error": errors[0] if errors else None,
        }
        emit_tagged(results, f"{prefix}_concurrent_{n}" + (f"_staggered_{stagger_s:g}s" if stagger_s else ""), row)
        if ok == n:
            best = n
        if any("no token for 60 s" in e for e in errors):
            emit_tagged(results, "fast_stalled", {"streams": n, "error": errors[0]})
            raise SystemExit("the GPU stalled: stopping the sweep (figures so far are in --out)")
    emit_tagged(
        results,
        f"{prefix}_max_concurrent_streams_rtf_below_1" + (f"_staggered_{stagger_s:g}s" if stagger_s else ""),
        best,
    )


AMP_NAMES = {"bf16": "bfloat16", "fp16": "float16"}
NO_LEVERS = {"apart": False, "hold_s": 0.0, "early_s": 0.0}


def parse_variant(text: str, streams: str) -> tuple[str, int, list[int], int, float, int, str, dict]:
    """GRAPHS:BATCH[:N/N/...[:FIRST[:GIL_MS]]], plus anywhere after BATCH the S3Gen levers:
    ``sN`` (N flow-matching steps) and ``bf16``/``fp16`` (encoder + HiFi-GAN autocast), and the
    first-audio levers: ``apart`` (first windows in batches of their own), ``holdMS`` (later
    windows held for fuller batches until MS ms before their caller's audio runs out),
    ``earlyMS`` (a window rendered with the tokens there are MS ms before that)."""
    parts = text.split(":")
    steps, amp, rest, lev = 0, "off", [], dict(NO_LEVERS)
    for part in parts[2:]:
        if part in AMP_NAMES:
            amp = AMP_NAMES[part]
        elif part[:1] == "s" and part[1:].isdigit():
            steps = int(part[1:])
        elif part == "apart":
            lev["apart"] = True
        elif part.startswith("hold") and part[4:].isdigit():
            lev["hold_s"] = int(part[4:]) / 1000
        elif part.startswith("early") and part[5:].isdigit():
            lev["early_s"] = int(part[5:]) / 1000
        else:
            rest.append(part)
    counts = rest[0] if rest and rest[0] else streams.replace(",", "/")
    first = int(rest[1]) if len(rest) > 1 and rest[1] else 0
    switch_ms = float(rest[2]) if len(rest) > 2 else 0.0
    return parts[0], int(parts[1]), [int(x) for x in counts.split("/") if x], first, switch_ms, steps, amp, lev


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--out", default=os.environ.get("OUT", "") and os.path.join(os.environ["OUT"], "chatterbox_gpu.json")
    )
    ap.add_argument("--model", choices=("english", "turbo"), default="english", help="Chatterbox or Chatterbox-Turbo")
    ap.add_argument("--streams", default="8,16,24,32,48,64")
    ap.add_argument("--skip-stock", action="store_true")
    ap.add_argument("--prompt-tokens", default="0,75", help="S3Gen reference prompt trims to compare (0: full)")
    ap.add_argument("--first-tokens", type=int, default=24)
    ap.add_argument(
        "--probe",
        action="store_true",
        help="only the engine as served: capacity measured by load, then --streams/--stagger sweeps "
        "under its adaptive first window (--light-first-tokens)",
    )
    ap.add_argument("--light-first-tokens", type=int, default=16)
    ap.add_argument("--s3gen-steps", type=int, default=0, help="--probe: flow-matching steps (0: the model's)")
    ap.add_argument("--s3gen-autocast", default="off", help="--probe: off|bf16|fp16 (encoder + HiFi-GAN)")
    ap.add_argument("--vocoder-batch", type=int, default=8, help="--probe: windows per S3Gen batch")
    ap.add_argument("--first-apart", action="store_true", help="--probe: first windows in batches of their own")
    ap.add_argument("--vocoder-hold", type=float, default=0.0, help="--probe: later windows held (s; 0 off)")
    ap.add_argument("--early-window", type=float, default=0.0, help="--probe: early windows (s; 0 off)")
    ap.add_argument(
        "--levers",
        default="",
        help="S3Gen levers first: per-part times and quality proxies at these batch sizes (e.g. 1,8)",
    )
    ap.add_argument("--levers-only", action="store_true", help="stop after --levers")
    ap.add_argument(
        "--window-proxy",
        default="",
        help="first-window quality proxy for these first-window sizes (e.g. 8,12,16,24), then stop "
        "(--s3gen-steps applies; runs on --device cpu too)",
    )
    ap.add_argument("--device", default="cuda", help="cpu: a dry run of --levers (slow, full-size model)")
    ap.add_argument("--window-tokens", type=int, default=66, help="--levers: tokens per window")
    ap.add_argument("--stagger", default="0", help="callers start spread over this many seconds (list: one sweep each)")
    ap.add_argument(
        "--variants",
        default="render:8",
        help="vocoder variants, each GRAPHS:BATCH[:N/N/...[:FIRST[:GIL_MS]]] (graphs render|estimator|off; "
        "vocoder batch limit; stream counts to sweep, default --streams; first window tokens, default "
        "--first-tokens; Python's GIL switch interval in ms, default 5), e.g. render:8,render:8::16,render:8:::1",
    )
    args = ap.parse_args()
    import torch

    global FIRST_TOKENS, OUT_PATH
    FIRST_TOKENS = args.first_tokens
    OUT_PATH = Path(args.out) if args.out else None
    results: dict = {
        "first_window_tokens": FIRST_TOKENS,
        "weights": "random (real architecture); speed only",
        "device": torch.cuda.get_device_name(0) if args.device == "cuda" else args.device,
        "model": args.model,
        "torch": torch.__version__,
    }
    global WINDOW_TOKENS
    WINDOW_TOKENS = args.window_tokens
    t0 = time.perf_counter()
    model = build_model(args.device, args.model)
    emit(results, "setup_s", round(time.perf_counter() - t0, 1))
    if args.window_proxy:
        window_proxy(model, results, [int(x) for x in args.window_proxy.split(",")], steps=args.s3gen_steps)
        return
    if args.levers:
        try:
            s3gen_levers(model, results, rows=[int(x) for x in args.levers.split(",")])
        except Exception as exc:  # recorded; the sweeps still run
            emit(results, "s3gen_levers_error", repr(exc)[:500])
    if args.probe:
        if not args.skip_stock:
            bench_stock(model, results)
        staggers = tuple(float(x) for x in args.stagger.split(","))
        bench_probe(
            model,
            results,
            [int(x) for x in args.streams.split(",")],
            staggers,
            args.light_first_tokens,
            s3gen_steps=args.s3gen_steps,
            s3gen_autocast=AMP_NAMES.get(args.s3gen_autocast, args.s3gen_autocast),
            vocoder_batch=args.vocoder_batch,
            levers={"apart": args.first_apart, "hold_s": args.vocoder_hold, "early_s": args.early_window},
        )
        return
    if args.levers_only:
        return
    if not args.skip_stock:
        bench_stock(model, results)
    check_render_graph(model, results)
    for i, pt in enumerate(int(x) for x in args.prompt_tokens.split(",")):
        bench_fast(
            model,
            results,
            [int(x) for x in args.streams.split(",")],
            pt,
            full=i == 0,
            staggers=tuple(float(x) for x in args.stagger.split(",")),
            variants=[parse_variant(v, args.streams) for v in args.variants.split(",")],
        )
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
