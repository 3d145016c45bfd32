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
