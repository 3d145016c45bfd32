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
    print(json.dumps({"stock": stock, "batched": batched, "leaver_tokens": leaver_tokens, "free_slots": free_slots}))


if __name__ == "__main__":
    main()
