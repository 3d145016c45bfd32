"""Engine parts that run in the dev environment (torch CPU, no chatterbox-tts needed)."""

import os
from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tts.app.backends.chatterbox_fast.capacity import probe_capacity, search, sentence_windows
from tts.app.backends.chatterbox_fast.decoder import slot_buckets
from tts.app.backends.chatterbox_fast.engine import FastChatterboxEngine, FastEngineConfig
from tts.app.backends.chatterbox_fast.vocoder import ChunkPlan
from tts.app.core.config import Settings


def test_capacity_and_load_are_exposed_for_dialing():
    engine = SimpleNamespace(
        capacity=32,
        _streams=5,
        light_streams=16,
        light_plans=9,
        scheduler=SimpleNamespace(
            active=4,
            last_step_s=0.0047,
            steps=10,
            step_s_total=0.05,
            prefill_s_total=0.01,
            prefix_hits=7,
            prefix_misses=2,
        ),
        vocoder=SimpleNamespace(
            windows=6, batches=2, busy_s=0.3, first_windows=3, first_wait_s=0.12, idle_capture_s=0.4
        ),
        early_windows=2,
    )
    registry = CollectorRegistry()
    FastChatterboxEngine.register_metrics(engine, registry)
    text = generate_latest(registry).decode()
    assert "tts_chatterbox_capacity_streams 32.0" in text
    assert "tts_chatterbox_active_streams 5.0" in text
    # Up to 16 streams a sentence starts with the short first window; 9 did so far.
    assert "tts_chatterbox_light_streams 16.0" in text
    assert "tts_chatterbox_light_plan_sentences_total 9.0" in text
    # Where first audio waits: decode step time and the vocoder queue, as counters.
    assert "tts_chatterbox_decode_step_seconds_total 0.05" in text
    assert "tts_chatterbox_first_window_wait_seconds_total 0.12" in text
    assert "tts_chatterbox_vocoder_busy_seconds_total 0.3" in text
    assert "tts_chatterbox_prefix_cache_hits_total 7.0" in text
    assert "tts_chatterbox_vocoder_idle_capture_seconds_total 0.4" in text
    assert "tts_chatterbox_early_windows_total 2.0" in text
    engine.capacity = 24  # a re-measurement is what /metrics shows next
    assert "tts_chatterbox_capacity_streams 24.0" in generate_latest(registry).decode()


def test_sentence_windows_cover_every_token_once_plus_context():
    plan = ChunkPlan(first_tokens=16, growth=2.5, max_tokens=100, context_tokens=6, overlap_tokens=3)
    for tokens in (10, 75, 250, 600):
        windows = sentence_windows(plan, tokens)
        assert windows[0] == min(16, tokens)
        # Each later window re-renders context + held-back tokens, never more than a chunk's worth.
        assert all(w <= plan.max_tokens + plan.context_tokens + plan.overlap_tokens for w in windows)
        new_tokens = windows[0] + sum(w - plan.context_tokens - plan.overlap_tokens for w in windows[1:])
        assert new_tokens == tokens


def _config_from_env(monkeypatch, env: dict[str, str]) -> FastEngineConfig:
    """What the server builds: its typed settings read from the environment, then the engine's config."""
    for name in [n for n in os.environ if n.startswith("TTS_")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return FastEngineConfig.from_settings(Settings())


def test_engine_settings_come_from_the_environment(monkeypatch):
    cfg = _config_from_env(
        monkeypatch,
        {
            "TTS_CHATTERBOX_FAST_MAX_SLOTS": "48",
            "TTS_CHATTERBOX_FAST_T3_DTYPE": "float16",
            "TTS_CHATTERBOX_FAST_CUDA_GRAPHS": "0",
            "TTS_CHATTERBOX_FAST_CAPACITY": "20",
            "TTS_CHATTERBOX_FAST_S3GEN_PROMPT_TOKENS": "75",
            "TTS_CHATTERBOX_FAST_FIRST_CHUNK_TOKENS": "12",
            "TTS_CHATTERBOX_FAST_PREFIX_CACHE_MB": "64",
            "TTS_CHATTERBOX_FAST_S3GEN_STEPS": "5",
            "TTS_CHATTERBOX_FAST_S3GEN_AUTOCAST": "bfloat16",
        },
    )
    assert cfg.prefix_cache_mb == 64
    assert (cfg.s3gen_steps, cfg.s3gen_autocast) == (5, "bfloat16")
    assert (cfg.max_slots, cfg.t3_dtype, cfg.cuda_graphs, cfg.capacity) == (48, "float16", False, 20)
    assert (cfg.s3gen_prompt_tokens, cfg.plan.first_tokens) == (75, 12)


def test_typed_settings_default_to_the_engine_defaults(monkeypatch):
    assert _config_from_env(monkeypatch, {}) == FastEngineConfig()


@pytest.mark.parametrize(
    ("env", "named"),
    [
        # A window no longer than its 3 held-back tokens would never move the stream on.
        ({"TTS_CHATTERBOX_FAST_MAX_CHUNK_TOKENS": "3"}, "CHATTERBOX_FAST_MAX_CHUNK_TOKENS"),
        ({"TTS_CHATTERBOX_FAST_FIRST_CHUNK_TOKENS": "0"}, "CHATTERBOX_FAST_FIRST_CHUNK_TOKENS"),
        ({"TTS_CHATTERBOX_FAST_LIGHT_FIRST_CHUNK_TOKENS": "3"}, "CHATTERBOX_FAST_LIGHT_FIRST_CHUNK_TOKENS"),
        # How capacity is measured: a load probe or the timing model, nothing else.
        ({"TTS_CHATTERBOX_FAST_CAPACITY_PROBE": "guess"}, "CHATTERBOX_FAST_CAPACITY_PROBE"),
        # A typo is refused, not read as "on" as the hand parsing did.
        ({"TTS_CHATTERBOX_FAST_CUDA_GRAPHS": "maybe"}, "CHATTERBOX_FAST_CUDA_GRAPHS"),
        # S3Gen's levers (issue 20): a step count below 0, a precision S3Gen has no kernels for.
        ({"TTS_CHATTERBOX_FAST_S3GEN_STEPS": "-1"}, "CHATTERBOX_FAST_S3GEN_STEPS"),
        ({"TTS_CHATTERBOX_FAST_S3GEN_AUTOCAST": "int8"}, "CHATTERBOX_FAST_S3GEN_AUTOCAST"),
    ],
)
def test_chunk_settings_that_would_never_play_are_refused_by_name(monkeypatch, env, named):
    with pytest.raises(ValueError, match=f"(?i){named}"):
        _config_from_env(monkeypatch, env)


def test_voice_conditioning_cache_is_lru_and_bounded_in_bytes():
    import torch

    from tts.app.backends.chatterbox_fast.decoder import PrefixKV
    from tts.app.backends.chatterbox_fast.scheduler import DecodeScheduler

    computed = []

    def compute_prefix(cond):
        computed.append(float(cond[0, 0, 0]))
        # 2 layers x 1 head x 4 positions x 8 dims, k and v in fp32: 512 bytes per voice
        return PrefixKV(torch.zeros(2, 1, 4, 8), torch.zeros(2, 1, 4, 8))

    decoder = SimpleNamespace(
        t3=SimpleNamespace(hp=SimpleNamespace(), speech_pos_emb=None),
        is_gpt=True,
        shape=SimpleNamespace(max_slots=2),
        vocab=16,
        device=torch.device("cpu"),
        compute_prefix=compute_prefix,
    )
    sched = DecodeScheduler(decoder, prefix_cache_bytes=1024)  # room for two voices

    def prefix(key, v: float):  # what join_inputs does per request
        hit = sched._cached_prefix(key)
        return hit if hit is not None else sched._store_prefix(key, compute_prefix(torch.full((1, 4, 8), v)))

    a = prefix("a", 1.0)
    assert prefix("a", 1.0) is a  # a hit: not computed again
    prefix("b", 2.0)
    prefix("a", 1.0)  # "a" is now the most recent
    prefix("c", 3.0)  # over 1024 bytes: the least recent, "b", goes
    assert list(sched._prefixes) == ["a", "c"]
    prefix(None, 4.0)  # no key: computed for one request, never cached
    assert list(sched._prefixes) == ["a", "c"]
    assert computed == [1.0, 2.0, 3.0, 4.0]
    assert (sched.prefix_hits, sched.prefix_misses) == (2, 4)


STREAM_COUNTS = slot_buckets(128)  # 1, 2, 4, 8, 16, 24, ... 128: the counts the probe may try


@pytest.mark.parametrize("true_capacity", [0, 1, 3, 8, 20, 40, 64, 70, 100, 128])
@pytest.mark.parametrize("estimate", [1, 24, 64, 96, 128])
def test_capacity_search_finds_the_largest_passing_count_from_any_estimate(true_capacity, estimate):
    probed = []

    def passes(n):
        probed.append(n)
        return n <= true_capacity

    capacity, order = search(passes, list(STREAM_COUNTS), estimate, max_probes=20)
    assert capacity == max((n for n in STREAM_COUNTS if n <= true_capacity), default=0)
    assert order == probed and len(set(order)) == len(order)  # no count probed twice


def test_capacity_search_stays_within_its_probe_budget_near_the_estimate():
    # Within a factor of 2 of the estimate, 6 probes of about 7 s each find the exact bucket.
    for true_capacity in range(8, 129):
        for estimate in (true_capacity // 2, true_capacity, min(128, true_capacity * 2)):
            capacity, order = search(lambda n, cap=true_capacity: n <= cap, list(STREAM_COUNTS), estimate, max_probes=6)
            assert len(order) <= 6
            assert capacity == max(n for n in STREAM_COUNTS if n <= true_capacity), (true_capacity, estimate, order)


def _probe_engine(max_slots=64):
    return SimpleNamespace(
        config=SimpleNamespace(
            max_slots=max_slots, plan=ChunkPlan(first_tokens=24), light_plan=ChunkPlan(first_tokens=16)
        ),
        decoder=SimpleNamespace(slot_buckets=slot_buckets(max_slots)),
        light_streams=0,
    )


def _limits(standard, light, serving):
    """A load test whose callers stay real-time up to a limit that depends on the plan."""
    calls = []

    def load(eng, n, stagger_s):
        if eng.light_streams == 0:
            kind, limit = "standard", standard
        elif eng.light_streams == eng.config.max_slots:
            kind, limit = "light", light
        else:
            kind, limit = "serving", serving
        calls.append((kind, n))
        return {"streams": n, "passed": n <= limit}

    return load, calls


def test_capacity_probe_measures_each_plan_then_checks_the_serving_policy_at_capacity():
    engine = _probe_engine()
    load, calls = _limits(standard=48, light=32, serving=48)
    report = probe_capacity(engine, estimate=64, stagger_s=3.0, load=load)
    assert (report["capacity_streams"], report["light_streams"], report["light_dropped"]) == (48, 32, False)
    assert engine.light_streams == 32  # what the engine serves with from now on
    kinds = [k for k, _ in calls]
    assert kinds == sorted(kinds, key=["standard", "light", "serving"].index)  # in that order
    assert calls[-1] == ("serving", 48)  # one check, at the capacity
    assert all(n <= 48 for k, n in calls if k == "light")  # never searched past the capacity
    assert [r["streams"] for r in report["probes"]["light"]] == [n for k, n in calls if k == "light"]


def test_capacity_probe_drops_a_short_first_window_that_would_cost_callers():
    # Chatterbox on the H200: 32 callers on the standard plan, 8 on the light one, and the
    # mixed policy fails at 32 (its vocoder is the bottleneck): capacity first.
    engine = _probe_engine()
    load, calls = _limits(standard=32, light=8, serving=16)
    report = probe_capacity(engine, estimate=24, load=load)
    assert (report["capacity_streams"], report["light_streams"], report["light_dropped"]) == (32, 0, True)
    assert engine.light_streams == 0


def test_capacity_probe_keeps_a_configured_light_limit_and_skips_its_search():
    engine = _probe_engine()
    load, calls = _limits(standard=40, light=0, serving=40)
    report = probe_capacity(engine, estimate=32, light_streams=8, load=load)
    assert "light" not in {k for k, _ in calls} and report["probes"]["light"] == []
    assert (report["capacity_streams"], report["light_streams"]) == (40, 8)


def test_a_sentence_gets_the_short_first_window_only_while_few_stream():
    cfg = FastEngineConfig(plan=ChunkPlan(first_tokens=24), light_first_tokens=16)
    engine = SimpleNamespace(config=cfg, light_streams=8, light_plans=0, _streams=8)
    assert FastChatterboxEngine.plan_for_new_stream(engine).first_tokens == 16  # this one is the 8th
    engine._streams = 9
    assert FastChatterboxEngine.plan_for_new_stream(engine).first_tokens == 24
    assert engine.light_plans == 1  # counted for /metrics
    engine.light_streams, engine._streams = 0, 1  # not measured (or measured 0): never light
    assert FastChatterboxEngine.plan_for_new_stream(engine).first_tokens == 24
    # A light window no shorter than the standard one is no light plan at all.
    assert FastEngineConfig(plan=ChunkPlan(first_tokens=16), light_first_tokens=16).light_plan is None
    assert FastEngineConfig(light_first_tokens=0).light_plan is None


def test_capacity_and_light_plan_settings_come_from_the_environment(monkeypatch):
    cfg = _config_from_env(
        monkeypatch,
        {
            "TTS_CHATTERBOX_FAST_CAPACITY_PROBE": "model",
            "TTS_CHATTERBOX_FAST_LIGHT_FIRST_CHUNK_TOKENS": "12",
            "TTS_CHATTERBOX_FAST_LIGHT_STREAMS": "20",
        },
    )
    assert (cfg.capacity_probe, cfg.light_first_tokens, cfg.light_streams) == ("model", 12, 20)
    assert cfg.light_plan.first_tokens == 12 and cfg.light_plan.max_tokens == cfg.plan.max_tokens
    assert _config_from_env(monkeypatch, {}).capacity_probe == "load"


def test_s3gen_levers_out_of_range_are_refused_by_name():
    """Also where the engine or the renderer is built directly (the bench), not from settings."""
    torch = pytest.importorskip("torch")
    from tts.app.backends.chatterbox_fast.s3gen_render import S3GenRenderer

    s3gen = SimpleNamespace(parameters=lambda: iter([torch.zeros(1)]))
    with pytest.raises(ValueError, match="S3GEN_AUTOCAST"):
        S3GenRenderer(s3gen, autocast="int8")
    with pytest.raises(ValueError, match="S3GEN_STEPS"):
        FastEngineConfig(s3gen_steps=-2)


# ---- first-audio levers (issue 20): vocoder batch choice, early windows ----


def _window(deadline: float, first: bool = False, name: str = ""):
    from tts.app.backends.chatterbox_fast.vocoder import RenderJob

    job = RenderJob(ref_dict={}, tokens=[0] * 8, first=first, deadline=deadline)
    job.name = name
    return job


def test_vocoder_batches_by_deadline_by_default():
    from tts.app.backends.chatterbox_fast.vocoder import select_batch

    pending = [_window(5.0, name="late"), _window(1.0, first=True, name="first"), _window(2.0, name="soon")]
    batch, due = select_batch(pending, now=0.0, max_batch=2)
    assert [j.name for j in batch] == ["first", "soon"] and due is None
    assert [j.name for j in pending] == ["late"]


def test_first_windows_render_in_batches_of_their_own():
    from tts.app.backends.chatterbox_fast.vocoder import select_batch

    # New callers (deadline: their arrival) before a caller with audio left until 2.0.
    pending = [_window(2.0, name="later"), _window(1.0, first=True, name="a"), _window(1.1, first=True, name="b")]
    batch, _ = select_batch(pending, now=1.2, max_batch=8, first_apart=True)
    assert [j.name for j in batch] == ["a", "b"]  # not padded to the later window's length or rows
    batch, _ = select_batch(pending, now=1.2, max_batch=8, first_apart=True)
    assert [j.name for j in batch] == ["later"]
    assert select_batch(pending, now=1.2, max_batch=8, first_apart=True) == ([], None)
    # A caller whose audio ran out (0.5) before a new caller arrived (1.0) is served first, alone.
    pending = [_window(1.0, first=True, name="new"), _window(0.5, name="late"), _window(3.0, name="other")]
    batch, _ = select_batch(pending, now=1.2, max_batch=8, first_apart=True)
    assert [j.name for j in batch] == ["late", "other"]
    # Both levers: held later windows never hold up a first one, nor ride in its batch.
    pending = [_window(3.0, name="held"), _window(1.0, first=True, name="new")]
    batch, due = select_batch(pending, now=1.2, max_batch=8, first_apart=True, hold_s=0.3)
    assert [j.name for j in batch] == ["new"]
    assert select_batch(pending, now=1.2, max_batch=8, first_apart=True, hold_s=0.3) == ([], 2.7)


def test_held_later_windows_wait_until_due_then_fill_the_batch():
    from tts.app.backends.chatterbox_fast.vocoder import select_batch

    # Two callers with 1.0 s and 1.5 s of audio left; held until 0.3 s before they run out.
    pending = [_window(1.5, name="b"), _window(1.0, name="a")]
    batch, due = select_batch(pending, now=0.0, max_batch=4, hold_s=0.3)
    assert batch == [] and due == 0.7 and len(pending) == 2
    batch, _ = select_batch(pending, now=0.7, max_batch=4, hold_s=0.3)
    assert [j.name for j in batch] == ["a", "b"]  # "a" is due; "b" rides along in the same batch
    # A first window never waits, and the held ones ride along (default: not apart).
    pending = [_window(2.0, name="held"), _window(0.0, first=True, name="first")]
    batch, _ = select_batch(pending, now=0.0, max_batch=4, hold_s=0.3)
    assert [j.name for j in batch] == ["first", "held"]
    # A whole batch waiting renders at once, due or not.
    pending = [_window(3.0 + i) for i in range(4)]
    batch, _ = select_batch(pending, now=0.0, max_batch=4, hold_s=0.3)
    assert len(batch) == 4 and pending == []


def test_vocoder_thread_wakes_when_a_held_window_falls_due():
    import threading
    import time

    from tts.app.backends.chatterbox_fast.vocoder import BatchedVocoder

    voc = object.__new__(BatchedVocoder)
    voc._pending, voc._cv, voc._stopping = [], threading.Condition(), False
    voc.max_batch, voc.first_apart, voc.hold_s = 8, False, 0.3
    voc.renderer = SimpleNamespace(deferred=False)
    t0 = time.monotonic()
    voc._pending.append(_window(t0 + 0.45, name="held"))
    batch = voc._next_batch()
    waited = time.monotonic() - t0
    assert [j.name for j in batch] == ["held"]
    assert 0.1 <= waited < 1.0, waited  # due at 0.15 s: not at once, not never


def test_vocoder_levers_come_from_the_environment(monkeypatch):
    cfg = _config_from_env(
        monkeypatch,
        {
            "TTS_CHATTERBOX_FAST_FIRST_WINDOWS_APART": "1",
            "TTS_CHATTERBOX_FAST_VOCODER_HOLD_S": "0.3",
            "TTS_CHATTERBOX_FAST_EARLY_WINDOW_S": "0.25",
        },
    )
    assert (cfg.first_windows_apart, cfg.vocoder_hold_s, cfg.early_window_s) == (True, 0.3, 0.25)
    with pytest.raises(ValueError, match="(?i)CHATTERBOX_FAST_VOCODER_HOLD_S"):
        _config_from_env(monkeypatch, {"TTS_CHATTERBOX_FAST_VOCODER_HOLD_S": "-1"})
    with pytest.raises(ValueError, match="EARLY_WINDOW_S"):
        FastEngineConfig(early_window_s=-0.1)


def _stream_windows(early_window_s: float) -> tuple[list[tuple[int, int]], int]:
    """One sentence through the engine's streaming loop, T3 and S3Gen stood in for: 8 tokens
    at once, 10 more at once, then nothing for 1 s (a burst's slow decoding), then the rest.
    Returns the windows rendered (token ranges) and the early windows counted."""
    import threading
    import time
    from collections import deque
    from concurrent.futures import Future

    import numpy as np

    from tts.app.backends.chatterbox_fast.scheduler import FINISHED, WAKE, DecodeJob

    windows = []

    class Vocoder:
        def submit(self, ref, tokens, first, deadline=0.0):
            windows.append(len(tokens))
            fut = Future()
            fut.set_result(np.zeros(len(tokens) * 960, dtype=np.float32))
            return fut

    def give(job, n):
        job.buffer.extend([1] * n)
        if len(job.buffer) >= job.wake_at:
            job.wake_at = 1 << 30
            job.tokens.put(WAKE)

    class Scheduler:
        def submit(self, job):
            def run():
                give(job, 8)
                time.sleep(0.05)
                give(job, 10)
                time.sleep(1.0)
                give(job, 22)
                job.tokens.put(FINISHED)

            threading.Thread(target=run, daemon=True).start()

    engine = object.__new__(FastChatterboxEngine)
    engine.config = FastEngineConfig(
        plan=ChunkPlan(first_tokens=8), light_first_tokens=0, early_window_s=early_window_s, watermark=False
    )
    engine.light_streams = engine.light_plans = engine.early_windows = 0
    engine._streams, engine.sample_rate, engine.turbo = 1, 24_000, False
    engine.scheduler, engine.vocoder, engine.model = Scheduler(), Vocoder(), SimpleNamespace()
    engine.first_audio_trace = deque()
    job = DecodeJob(text_tokens=None, t3_cond=None)
    audio = list(engine._stream_job(job, SimpleNamespace(ref_dict={}), threading.Event()))
    assert sum(len(a) for a in audio) == 40 * 960  # every token heard once, either way
    return windows, engine.early_windows


def test_an_early_window_renders_the_tokens_there_are_before_the_caller_runs_out():
    # The first window plays 5 tokens (0.2 s); the plan's second wants 25 tokens, which T3
    # is 1 s late with. Early windows off: the caller hears a gap until then.
    windows, early = _stream_windows(0.0)
    assert windows[:2] == [8, 25] and early == 0
    # On (0.15 s before the audio runs out): the 18 tokens decoded go out at once (and, as
    # T3 is still late when those run out, the next tokens too, before the plan's 50).
    windows, early = _stream_windows(0.15)
    assert windows[:2] == [8, 18] and early >= 1
