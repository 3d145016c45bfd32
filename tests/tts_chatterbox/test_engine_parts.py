"""Engine parts that run in the dev environment (torch CPU, no chatterbox-tts needed)."""

from types import SimpleNamespace

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from tts.app.backends.chatterbox_fast.capacity import sentence_windows
from tts.app.backends.chatterbox_fast.engine import FastChatterboxEngine, FastEngineConfig
from tts.app.backends.chatterbox_fast.vocoder import ChunkPlan


def test_capacity_and_load_are_exposed_for_dialing():
    engine = SimpleNamespace(
        capacity=32,
        _streams=5,
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


def test_engine_settings_come_from_the_environment():
    cfg = FastEngineConfig.from_env(
        {
            "TTS_CHATTERBOX_FAST_MAX_SLOTS": "48",
            "TTS_CHATTERBOX_FAST_T3_DTYPE": "float16",
            "TTS_CHATTERBOX_FAST_CUDA_GRAPHS": "0",
            "TTS_CHATTERBOX_FAST_CAPACITY": "20",
            "TTS_CHATTERBOX_FAST_S3GEN_PROMPT_TOKENS": "75",
            "TTS_CHATTERBOX_FAST_FIRST_CHUNK_TOKENS": "12",
            "TTS_CHATTERBOX_FAST_PREFIX_CACHE_MB": "64",
        }
    )
    assert cfg.prefix_cache_mb == 64
    assert (cfg.max_slots, cfg.t3_dtype, cfg.cuda_graphs, cfg.capacity) == (48, "float16", False, 20)
    assert (cfg.s3gen_prompt_tokens, cfg.plan.first_tokens) == (75, 12)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        # A window no longer than its 3 held-back tokens would never move the stream on.
        ({"TTS_CHATTERBOX_FAST_MAX_CHUNK_TOKENS": "3"}, "TTS_CHATTERBOX_FAST_MAX_CHUNK_TOKENS"),
        ({"TTS_CHATTERBOX_FAST_FIRST_CHUNK_TOKENS": "0"}, "TTS_CHATTERBOX_FAST_FIRST_CHUNK_TOKENS"),
    ],
)
def test_chunk_settings_that_would_never_play_are_refused_by_name(env, named):
    with pytest.raises(ValueError, match=named):
        FastEngineConfig.from_env(env)


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
