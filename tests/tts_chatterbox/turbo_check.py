"""Run inside .venv-chatterbox: stock T3.inference_turbo vs the batched scheduler, tiny Turbo T3.

Chatterbox-Turbo's T3 is a GPT-2 backbone without CFG (one KV row per request). Four requests
of different text lengths join the batch at staggered times; with top_k=1 (greedy) each must
produce exactly the tokens upstream produces for it alone, even when a request whose text
leaves no room to speak joins mid-batch (it alone fails). Also checks the Turbo sampler
against transformers' own logits processors, in upstream's order, and the bucketed (graph
shape) prefill against the exact one. Prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from doubles.tiny_chatterbox import drain, prefill_modes_diff, tiny_cond, tiny_turbo_t3, turbo_text_tokens  # noqa: E402
from tts.app.backends.chatterbox_fast.decoder import DecoderShape, T3BatchDecoder  # noqa: E402
from tts.app.backends.chatterbox_fast.sampling import SlotSampling, turbo_scores  # noqa: E402
from tts.app.backends.chatterbox_fast.scheduler import DecodeJob, DecodeScheduler  # noqa: E402

# (text ids, tokens, voice): the last request speaks in the first one's voice (cached conditioning).
REQUESTS = [
    ([464, 3290, 318, 257, 1332, 13], 30, 6),
    ([15496, 11], 25, 2),
    ([40] * 40, 35, 40),
    ([7, 8, 9], 20, 3),
    ([50, 51, 52, 53, 54], 25, 6),
]
SHAPE = DecoderShape(4, 256, (64, 128, 256))


def main() -> None:
    t3 = tiny_turbo_t3()
    stock = []
    for ids, n, voice in REQUESTS:
        out = t3.inference_turbo(
            t3_cond=tiny_cond(t3, seed=voice),
            text_tokens=turbo_text_tokens(ids),
            top_k=1,
            max_gen_len=n - 1,  # upstream emits a first token, then up to max_gen_len more
        )
        stock.append(out[0].tolist())
    decoder = T3BatchDecoder(t3, SHAPE, dtype=torch.float32, device="cpu")
    scheduler = DecodeScheduler(decoder)
    scheduler.start()
    jobs = []
    for ids, n, voice in REQUESTS:
        job = DecodeJob(
            text_tokens=turbo_text_tokens(ids),
            t3_cond=tiny_cond(t3, seed=voice),
            prefix_key=("voice", voice),
            cfg_weight=0.0,
            min_p=0.0,
            top_p=0.95,
            top_k=1,
            max_new_tokens=n,
        )
        jobs.append(scheduler.submit(job))
        time.sleep(0.03)  # later requests join a batch already decoding
        if len(jobs) == 2:  # a text with no room to speak, joining streams in flight
            too_long = scheduler.submit(
                DecodeJob(text_tokens=turbo_text_tokens([11] * 300), t3_cond=tiny_cond(t3, seed=9), top_k=1)
            )
    batched = [drain(job) for job in jobs]
    too_long_tokens = drain(too_long)
    deadline = time.time() + 10
    while scheduler.active and time.time() < deadline:
        time.sleep(0.01)
    free_slots = len(scheduler._free)
    prefix_hits = scheduler.prefix_hits
    scheduler.stop()
    print(
        json.dumps(
            {
                "stock": stock,
                "batched": batched,
                "free_slots": free_slots,
                "too_long_tokens": len(too_long_tokens),
                "too_long_error": str(too_long.error),
                "rows_per_slot": decoder.rows_per_slot,
                "sampler_max_diff": sampler_diff(),
                "prefix_hits": prefix_hits,
                "mixed_voice_prompts_max_diff": mixed_voice_prompts(t3),
                **{f"prefill_{k}_max_diff": v for k, v in padded_prefill_diff(t3).items()},
            }
        )
    )


def sampler_diff() -> float:
    """turbo_scores vs transformers' temperature -> top-k -> top-p -> repetition penalty."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    g = torch.Generator().manual_seed(3)
    vocab, n = 6563, 3
    logits = torch.randn(n, vocab, generator=g) * 4
    seen_ids = [torch.randint(0, vocab, (k,), generator=g) for k in (1, 5, 20)]
    # Make a seen token the top one, so the penalty (applied last) changes the arg-max.
    for i, ids in enumerate(seen_ids):
        logits[i, ids[0]] = logits[i].max() + 0.5
    settings = [(0.8, 1000, 0.95, 1.2), (1.0, 50, 0.9, 1.5), (0.5, 0, 1.0, 2.0)]
    s = SlotSampling.empty(n, vocab, torch.device("cpu"))
    worst = 0.0
    for i, ((temp, k, p, rep), ids) in enumerate(zip(settings, seen_ids, strict=True)):
        s.assign(i, cfg_weight=0.0, repetition_penalty=rep, temperature=temp, min_p=0.0, top_p=p, greedy=False, bos=0)
        s.top_k[i] = k
        s.seen[i].zero_()
        s.seen[i, ids] = True
        procs = LogitsProcessorList([TemperatureLogitsWarper(temp)] if temp != 1.0 else [])
        if k > 0:
            procs.append(TopKLogitsWarper(k))
        if p < 1.0:
            procs.append(TopPLogitsWarper(p))
        procs.append(RepetitionPenaltyLogitsProcessor(rep))
        want = procs(ids[None, :], logits[i : i + 1].clone())[0]
        got = turbo_scores(logits[i : i + 1], torch.tensor([i]), s)[0]
        if not torch.equal(torch.isinf(want), torch.isinf(got)):
            return float("inf")
        finite = torch.isfinite(want)
        worst = max(worst, (want[finite] - got[finite]).abs().max().item())
    return worst


def padded_prefill_diff(t3) -> dict:
    """The first three requests joined into slots [0, 2, 3] (3 joiners padded to 4)."""
    return prefill_modes_diff(
        t3,
        SHAPE,
        lambda: [
            DecodeJob(text_tokens=turbo_text_tokens(ids), t3_cond=tiny_cond(t3, seed=voice))
            for ids, _, voice in REQUESTS[:3]
        ],
    )


def mixed_voice_prompts(t3) -> float:
    """A long text in a short-prompt voice (a short clip) joining with a short text in a
    full-prompt voice: one padded prefill must stay inside the cache (the short text's padding
    would run past max_len) and give each prompt's logits as a whole-prompt prefill does."""
    short_voice = tiny_cond(t3, seed=21)
    short_voice.cond_prompt_speech_tokens = short_voice.cond_prompt_speech_tokens[:, :4]
    jobs = [
        DecodeJob(text_tokens=turbo_text_tokens([5, 6, 7]), t3_cond=tiny_cond(t3, seed=20)),
        DecodeJob(text_tokens=turbo_text_tokens([9] * 247), t3_cond=short_voice),  # 5 + 248 of 256
    ]
    slots = [0, 1]
    decoder = T3BatchDecoder(t3, SHAPE, dtype=torch.float32, device="cpu")
    sched = DecodeScheduler(decoder)
    with torch.inference_mode():
        whole = []
        for job, slot in zip(jobs, slots, strict=True):
            e, _ = sched._prompt_embeds(job)
            out = decoder._layers(e, torch.arange(e.shape[1])[None], torch.tensor([slot]), kv_len=None)
            whole.append(t3.speech_head(out[:, -1]).float())
        prefixes, suffixes = sched.join_inputs(jobs)
        joined = decoder.prefill(prefixes, suffixes, slots)
    return (torch.cat(whole) - joined).abs().max().item()


if __name__ == "__main__":
    main()
