"""Run inside .venv-chatterbox: stock T3.inference vs the batched scheduler, greedy, tiny T3.

Four requests of different text lengths and CFG weights join the batch at staggered times;
each must produce exactly the tokens upstream produces for it alone. Prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent)]

import torch  # noqa: E402
from tiny_chatterbox import text_tokens, tiny_cond, tiny_t3  # noqa: E402

from tts.app.backends.chatterbox_fast.decoder import DecoderShape, T3BatchDecoder  # noqa: E402
from tts.app.backends.chatterbox_fast.scheduler import FINISHED, DecodeJob, DecodeScheduler  # noqa: E402

REQUESTS = [([5, 6, 7, 8, 9, 10, 11], 0.5, 30), ([20, 21, 22], 0.3, 25), ([40] * 15, 0.7, 35), ([3, 4], 0.5, 20)]


def main() -> None:
    t3 = tiny_t3()
    stock = []
    for ids, w, n in REQUESTS:
        out = t3.inference(
            t3_cond=tiny_cond(t3, seed=len(ids)),
            text_tokens=text_tokens(t3, ids),
            max_new_tokens=n,
            stop_on_eos=True,
            min_p=1.0,
            top_p=1.0,
            cfg_weight=w,
        )
        stock.append([x for x in out[0].tolist() if x != t3.hp.stop_speech_token])
    decoder = T3BatchDecoder(t3, DecoderShape(4, 256, (64, 128, 256)), dtype=torch.float32, device="cpu")
    scheduler = DecodeScheduler(decoder)
    scheduler.start()
    # A caller who hangs up mid-sentence: its slot must free without disturbing the others.
    leaver = scheduler.submit(
        DecodeJob(
            text_tokens=text_tokens(t3, [9, 9, 9]),
            t3_cond=tiny_cond(t3, seed=3),
            greedy=True,
            min_p=1.0,
            max_new_tokens=200,
            stop_on_eos=False,
        )
    )
    for _ in range(3):
        leaver.tokens.get(timeout=60)
    jobs = []
    for ids, w, n in REQUESTS:
        jobs.append(
            scheduler.submit(
                DecodeJob(
                    text_tokens=text_tokens(t3, ids),
                    t3_cond=tiny_cond(t3, seed=len(ids)),
                    cfg_weight=w,
                    greedy=True,
                    min_p=1.0,
                    max_new_tokens=n,
                )
            )
        )
        time.sleep(0.03)  # later requests join a batch already decoding
        if len(jobs) == 2:
            leaver.cancelled.set()
    batched = []
    for job in jobs:
        got = []
        while (tok := job.tokens.get(timeout=60)) is not FINISHED:
            got.append(tok)
        batched.append(got)
    leaver_tokens = 3
    while leaver.tokens.get(timeout=60) is not FINISHED:
        leaver_tokens += 1
    deadline = time.time() + 10
    while scheduler.active and time.time() < deadline:
        time.sleep(0.01)
    free_slots = len(scheduler._free)
    scheduler.stop()
    prefill_diff = padded_prefill_diff(t3)
    print(
        json.dumps(
            {
                "stock": stock,
                "batched": batched,
                "leaver_tokens": leaver_tokens,
                "free_slots": free_slots,
                "prefill_padded_max_diff": prefill_diff,
            }
        )
    )


def padded_prefill_diff(t3) -> float:
    """The bucketed prefill (what CUDA replays as a graph: 3 joiners padded to 4 by repeating
    the last, prompts padded to a length bucket) vs the exact-length eager prefill: logits and
    the cache entries of every real position."""
    shape = DecoderShape(4, 256, (64, 128, 256))
    runs = []
    for padded in (False, True):
        decoder = T3BatchDecoder(t3, shape, dtype=torch.float32, device="cpu")
        sched = DecodeScheduler(decoder)
        jobs = [
            DecodeJob(text_tokens=text_tokens(t3, ids), t3_cond=tiny_cond(t3, seed=len(ids)))
            for ids, _, _ in REQUESTS[:3]
        ]
        embeds = [sched._prompt_embeds(job) for job in jobs]
        with torch.inference_mode():
            fn = decoder._prefill_replay if padded else decoder._prefill_eager
            logits = fn(embeds, [0, 2, 3])
        lens = [e.shape[1] for e in embeds]
        cache = [decoder.k_cache[-1][2 * s : 2 * s + 2, :, :n].clone() for s, n in zip([0, 2, 3], lens, strict=True)]
        runs.append((logits, cache))
    (la, ca), (lb, cb) = runs
    diff = (la - lb).abs().max().item()
    return max([diff] + [(x - y).abs().max().item() for x, y in zip(ca, cb, strict=True)])


if __name__ == "__main__":
    main()
