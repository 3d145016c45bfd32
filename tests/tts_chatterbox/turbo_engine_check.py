"""Run inside .venv-chatterbox: the whole fast engine, end to end, with Chatterbox-Turbo (CPU).

A ChatterboxTurboTTS of the real classes with random weights: tiny GPT-2 T3, meanflow S3Gen,
a word-level tokenizer standing in for GPT-2's BPE files, and a built-in voice (Conditionals).
Two requests stream concurrently (one passing cfg_weight / exaggeration, which Turbo ignores);
a third is cancelled after its first chunk. Prints one JSON line.
"""

import json
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAMPLES_PER_TOKEN = 960
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from doubles.tiny_chatterbox import random_s3gen_reference, tiny_cond, tiny_turbo_t3  # noqa: E402
from tts.app.backends.chatterbox_engine import ChatterboxCall  # noqa: E402
from tts.app.backends.chatterbox_fast.engine import FastChatterboxEngine, FastEngineConfig  # noqa: E402
from tts.app.backends.chatterbox_fast.vocoder import ChunkPlan  # noqa: E402

WORDS = ["hello", "there", "this", "is", "a", "short", "test", "of", "the", "turbo", "engine"]
BASE = {"stop_on_eos": False, "top_k": 1}  # random weights never emit the stop token
REQUESTS = {
    "a": ("Hello there, this is a test.", {"max_new_tokens": 40, **BASE}),
    "b": ("A short test of the turbo engine", {"max_new_tokens": 30, "cfg_weight": 0.5, "exaggeration": 0.7, **BASE}),
}
# A budget the tiny T3 takes a while to decode (capped by max_len): likely still decoding when
# the caller leaves after its first chunk (timing-dependent, so reported, not asserted).
CANCELLED = ("this is the turbo engine", {"max_new_tokens": 1000, **BASE})


def word_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[UNK]", ",", ".", *WORDS, *(w.capitalize() for w in WORDS)])}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tk, unk_token="[UNK]", pad_token="[UNK]")


def build_model():
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.voice_encoder import VoiceEncoder
    from chatterbox.tts_turbo import ChatterboxTurboTTS, Conditionals

    t3 = tiny_turbo_t3()
    torch.manual_seed(0)
    s3gen = S3Gen(meanflow=True).eval()
    ref = random_s3gen_reference(20)
    conds = Conditionals(tiny_cond(t3), ref)
    return ChatterboxTurboTTS(
        t3=t3, s3gen=s3gen, ve=VoiceEncoder().eval(), tokenizer=word_tokenizer(), device="cpu", conds=conds
    )


def consume(engine, text: str, kwargs: dict, out: dict, key: str) -> None:
    try:
        call = ChatterboxCall(text=text, audio_prompt_path=None, kwargs=kwargs)
        chunks = [np.asarray(c) for c in engine.stream(call, threading.Event())]
        audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
        out[key] = {
            "samples": int(len(audio)),
            "chunks": len(chunks),
            "chunk_samples": [int(len(c)) for c in chunks],
            "finite": bool(np.isfinite(audio).all()),
            "peak": float(np.abs(audio).max()) if len(audio) else 0.0,
            "max_new_tokens": kwargs["max_new_tokens"],
        }
    except BaseException as exc:  # reported, not swallowed: the test shows it
        out[key] = {"error": f"{type(exc).__name__}: {exc}"}


def cancel_after_first_chunk(engine) -> dict:
    text, kwargs = CANCELLED
    jobs = []
    make_job = engine.make_job
    engine.make_job = lambda *a: jobs.append(make_job(*a)) or jobs[-1]  # keep the job to inspect it
    cancelled = threading.Event()
    try:
        gen = engine.stream(ChatterboxCall(text=text, audio_prompt_path=None, kwargs=kwargs), cancelled)
        first = next(gen)
        cancelled.set()
        rest = list(gen)  # the generator sees the event and returns
        gen.close()
    finally:
        engine.make_job = make_job
    (job,) = jobs
    deadline = time.time() + 20
    while not job.finished and time.time() < deadline:
        time.sleep(0.01)
    return {
        "first_samples": int(len(first)),
        "chunks_after_cancel": len(rest),
        "job_cancelled": job.cancelled.is_set(),  # set by stream()'s finally: frees the slot
        "job_finished": job.finished,
        "tokens_decoded": job.emitted,  # < budget when the cancel landed mid-decode
        "budget": kwargs["max_new_tokens"],
    }


def slow_reader(engine) -> dict:
    """A caller that reads its first chunk, then nothing until T3 has decoded the whole
    sentence: the backlog must still go out in planned windows (shapes the vocoder captured),
    not as one window of every token, and all of it must be heard."""
    sizes = []
    submit = engine.vocoder.submit
    engine.vocoder.submit = lambda ref, tokens, **kw: sizes.append(len(tokens)) or submit(ref, tokens, **kw)
    jobs = []
    make_job = engine.make_job
    engine.make_job = lambda *a: jobs.append(make_job(*a)) or jobs[-1]
    try:
        call = ChatterboxCall(text="this is a test", audio_prompt_path=None, kwargs={"max_new_tokens": 60, **BASE})
        gen = engine.stream(call, threading.Event())
        first = next(gen)
        deadline = time.time() + 60
        while not jobs[0].finished and time.time() < deadline:
            time.sleep(0.01)
        backlog = len(jobs[0].buffer)
        rest = list(gen)
    finally:
        engine.vocoder.submit, engine.make_job = submit, make_job
    plan = engine.config.plan
    return {
        "samples": int(len(first) + sum(len(c) for c in rest)),
        "max_new_tokens": 60,
        "backlog_tokens": backlog,
        "window_sizes": sizes,
        "longest_captured_window": plan.max_tokens + plan.context_tokens + plan.overlap_tokens,
    }


def shutdown_fails_streams(engine) -> dict:
    """engine.close() with a stream in flight: the stream fails at once, not after the 60 s
    token timeout."""
    call = ChatterboxCall(
        text="this is the turbo engine", audio_prompt_path=None, kwargs={"max_new_tokens": 400, **BASE}
    )
    gen = engine.stream(call, threading.Event())
    next(gen)
    engine.close()
    t0 = time.perf_counter()
    try:
        for _ in gen:
            pass
        error = None
    except RuntimeError as exc:
        error = f"{exc} ({exc.__cause__})" if exc.__cause__ else str(exc)
    return {"error": error, "seconds": time.perf_counter() - t0}


def adaptive_first_window(engine) -> dict:
    """A sentence starting while at most ``light_streams`` stream gets the short first window;
    one starting beside another stream past that limit gets the standard one. Then the
    capacity probe's load test, two real callers through this engine."""
    from tts.app.backends.chatterbox_fast.capacity import load_test

    def call(text: str):
        return engine.stream(ChatterboxCall(text=text, audio_prompt_path=None, kwargs=kwargs), threading.Event())

    kwargs = {"max_new_tokens": 30, **BASE}
    engine.light_streams = 1
    light_before = engine.light_plans
    try:
        alone = list(call("this is a test"))
        held = call("this is a test")
        held_first = next(held)  # still streaming: the next sentence starts with 2 streams up
        beside = list(call("a short test"))
        list(held)
        light_sentences = engine.light_plans - light_before
        probe = load_test(engine, 2, tokens=20, sentences=1, stagger_s=0.0, timeout_s=120)
    finally:
        engine.light_streams = 0
    return {
        # The first chunk plays a window's tokens less the ones it holds back for the next.
        "first_chunk_tokens": [len(c) / SAMPLES_PER_TOKEN for c in (alone[0], held_first, beside[0])],
        "light_first_tokens": engine.config.light_plan.first_tokens,
        "standard_first_tokens": engine.config.plan.first_tokens,
        "held_back_tokens": engine.config.plan.overlap_tokens,
        "light_sentences": light_sentences,
        "samples": [int(sum(len(c) for c in chunks)) for chunks in (alone, beside)],
        "max_new_tokens": kwargs["max_new_tokens"],
        "probe": probe,
    }


def ignored_kwargs_same_job(engine) -> bool:
    """cfg_weight / exaggeration change nothing in the decode job Turbo builds."""
    text, kwargs = REQUESTS["b"]
    voice = engine._voice(None)
    plain = {k: v for k, v in kwargs.items() if k not in ("cfg_weight", "exaggeration")}
    a, b = engine.make_job(text, voice, kwargs), engine.make_job(text, voice, plain)
    return bool(
        a.cfg_weight == b.cfg_weight == 0.0
        and torch.equal(a.text_tokens, b.text_tokens)
        and torch.equal(a.t3_cond.emotion_adv, b.t3_cond.emotion_adv)
    )


def main() -> None:
    t0 = time.perf_counter()
    model = build_model()
    config = FastEngineConfig(
        max_slots=4,
        max_len=512,  # Turbo's default 1536 is for GPT-2 medium's 8196 positions; the tiny T3 has 1024
        cuda_graphs=False,
        watermark=False,
        plan=ChunkPlan(first_tokens=8, max_tokens=16),
        light_first_tokens=5,  # used only while engine.light_streams > 0 (adaptive_first_window)
    )
    engine = FastChatterboxEngine(model, config, generator_seed=0)
    build_s = time.perf_counter() - t0
    out: dict = {key: {"error": "timed out"} for key in REQUESTS}
    threads = [
        threading.Thread(target=consume, args=(engine, text, kw, out, key)) for key, (text, kw) in REQUESTS.items()
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    cancel = cancel_after_first_chunk(engine)
    slow = slow_reader(engine)
    adaptive = adaptive_first_window(engine)
    deadline = time.time() + 20
    while engine.scheduler.active and time.time() < deadline:
        time.sleep(0.01)
    free_slots = len(engine.scheduler._free)
    renderer = engine.vocoder.renderer
    result = {
        "turbo": engine.turbo,
        "rows_per_slot": engine.decoder.rows_per_slot,
        "n_timesteps": renderer.n_timesteps,
        "meanflow": bool(renderer.meanflow),
        "sample_rate": engine.sample_rate,
        "requests": out,
        "cancelled": cancel,
        "ignored_kwargs_same_job": ignored_kwargs_same_job(engine),
        "tokens_decoded": engine.scheduler.tokens_out,
        "active_after": engine.scheduler.active,
        "free_slots": free_slots,
        "active_streams": engine.active_streams,
        "slow_reader": slow,
        "adaptive": adaptive,
        "build_s": build_s,
    }
    result["shutdown"] = shutdown_fails_streams(engine)  # last: it closes the engine
    result["total_s"] = time.perf_counter() - t0
    print(json.dumps(result))


if __name__ == "__main__":
    main()
