"""Run inside .venv-chatterbox: stock T3.inference vs the batched scheduler, greedy, tiny T3.

Four requests of different text lengths and CFG weights join the batch at staggered times;
each must produce exactly the tokens upstream produces for it alone. Prints one JSON line.
"""

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from doubles.tiny_chatterbox import drain, prefill_modes_diff, text_tokens, tiny_cond, tiny_t3  # noqa: E402
from tts.app.backends.chatterbox_fast.decoder import DecoderShape, T3BatchDecoder  # noqa: E402
from tts.app.backends.chatterbox_fast.scheduler import FINISHED, DecodeJob, DecodeScheduler  # noqa: E402

# (text ids, cfg weight, tokens, voice): the last request speaks in the first one's voice, so
# it joins with that voice's cached conditioning.
REQUESTS = [
    ([5, 6, 7, 8, 9, 10, 11], 0.5, 30, 7),
    ([20, 21, 22], 0.3, 25, 3),
    ([40] * 15, 0.7, 35, 15),
    ([3, 4], 0.5, 20, 2),
    ([30, 31, 32, 33], 0.5, 25, 7),
]


def main() -> None:
    t3 = tiny_t3()
    stock = []
    for ids, w, n, voice in REQUESTS:
        out = t3.inference(
            t3_cond=tiny_cond(t3, seed=voice),
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
    for ids, w, n, voice in REQUESTS:
        jobs.append(
            scheduler.submit(
                DecodeJob(
                    text_tokens=text_tokens(t3, ids),
                    t3_cond=tiny_cond(t3, seed=voice),
                    prefix_key=("voice", voice, 0.5),
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
    batched = [drain(job) for job in jobs]
    leaver_tokens = 3
    while leaver.tokens.get(timeout=60) is not FINISHED:
        leaver_tokens += 1
    deadline = time.time() + 10
    while scheduler.active and time.time() < deadline:
        time.sleep(0.01)
    free_slots = len(scheduler._free)
    prefix_hits = scheduler.prefix_hits
    scheduler.stop()
    prefill_diff = padded_prefill_diff(t3)
    print(
        json.dumps(
            {
                "stock": stock,
                "batched": batched,
                "leaver_tokens": leaver_tokens,
                "free_slots": free_slots,
                "prefill_cached_vs_full_max_diff": prefill_diff["cached_vs_full"],
                "prefill_padded_max_diff": prefill_diff["padded_vs_eager"],
                "prefix_hits": prefix_hits,
            }
        )
    )


def padded_prefill_diff(t3) -> dict:
    """The first three requests joined into slots [0, 2, 3] (3 joiners padded to 4)."""
    return prefill_modes_diff(
        t3,
        DecoderShape(4, 256, (64, 128, 256)),
        lambda: [
            DecodeJob(text_tokens=text_tokens(t3, ids), t3_cond=tiny_cond(t3, seed=voice))
            for ids, _, _, voice in REQUESTS[:3]
        ],
    )


if __name__ == "__main__":
    main()
