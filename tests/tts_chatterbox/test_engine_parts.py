"""Engine parts that run in the dev environment (torch CPU, no chatterbox-tts needed)."""

from types import SimpleNamespace

from prometheus_client import CollectorRegistry, generate_latest

from tts.app.backends.chatterbox_fast.capacity import sentence_windows
from tts.app.backends.chatterbox_fast.engine import FastChatterboxEngine, FastEngineConfig
from tts.app.backends.chatterbox_fast.vocoder import ChunkPlan


def test_capacity_and_load_are_exposed_for_dialing():
    engine = SimpleNamespace(
        capacity=32,
        _streams=5,
        scheduler=SimpleNamespace(active=4, last_step_s=0.0047, steps=10, step_s_total=0.05, prefill_s_total=0.01),
        vocoder=SimpleNamespace(windows=6, batches=2, busy_s=0.3, first_windows=3, first_wait_s=0.12),
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
        }
    )
    assert (cfg.max_slots, cfg.t3_dtype, cfg.cuda_graphs, cfg.capacity) == (48, "float16", False, 20)
    assert (cfg.s3gen_prompt_tokens, cfg.plan.first_tokens) == (75, 12)
