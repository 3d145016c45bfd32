"""The batched T3 path emits the same tokens as upstream chatterbox for the same greedy request.

Runs in .venv-chatterbox (chatterbox-tts pins torch 2.6 / numpy<2 and must stay out of .venv);
tests/tts_chatterbox/setup_env.sh creates it.
"""

import sys

import pytest

from tests.tts_chatterbox.venv_check import ROOT, needs_venv, run_check

pytestmark = needs_venv


def test_batched_decoding_matches_stock_greedy_tokens():
    result = run_check("equivalence_check.py", timeout=240)
    assert all(len(s) >= 20 for s in result["stock"])
    assert result["batched"] == result["stock"]
    # The cancelled request stopped well before its 200-token budget and gave its slot back.
    assert result["leaver_tokens"] < 200
    assert result["free_slots"] == 4
    # The request in an earlier request's voice reused its cached conditioning (and still
    # matched upstream above); joining after cached conditioning computes what a prefill of
    # the whole prompt does, and so does the graph's padded form of it.
    assert result["prefix_hits"] >= 1
    assert result["prefill_cached_vs_full_max_diff"] < 1e-4
    assert result["prefill_padded_max_diff"] < 1e-4


def test_stitcher_crossfades_held_back_tokens():
    sys.path.insert(0, str(ROOT))
    np = pytest.importorskip("numpy")
    from tts.app.backends.chatterbox_fast.vocoder import ChunkPlan, StreamStitcher

    spt = 10
    plan = ChunkPlan(first_tokens=4, growth=2, max_tokens=8, context_tokens=2, overlap_tokens=1)
    signal = np.arange(20 * spt, dtype=np.float32)  # a "render" that is the same in every window
    st = StreamStitcher(plan, samples_per_token=spt)
    out = []
    for total, final in ((4, False), (12, False), (20, True)):
        start, end = st.plan_window(total, final)
        out.append(st.stitch(signal[start * spt : end * spt], start, end, final))
    joined = np.concatenate(out)
    assert len(joined) == 20 * spt  # every token's audio exactly once
    np.testing.assert_allclose(joined, signal, atol=1e-3 * signal.max() + 1.0)


def test_turbo_batched_decoding_matches_stock_greedy_tokens():
    """Chatterbox-Turbo's GPT-2 T3 (no CFG: one cache row per request) through the same scheduler."""
    result = run_check("turbo_check.py", timeout=240)
    assert result["rows_per_slot"] == 1
    assert all(len(s) >= 20 for s in result["stock"])
    assert result["batched"] == result["stock"]
    assert result["free_slots"] == 4
    # An over-long text fails alone, with what to do; the streams decoding beside it go on.
    assert result["too_long_tokens"] == 0
    assert "text too long" in result["too_long_error"] and "TTS_CHATTERBOX_FAST_MAX_LEN" in result["too_long_error"]
    # Temperature -> top-k -> top-p -> repetition penalty, as transformers' processors compute it.
    assert result["sampler_max_diff"] < 1e-5
    # Conditioning cached per voice (376 of a Turbo prompt's ~400 positions) joins exactly.
    assert result["prefix_hits"] >= 1
    assert result["prefill_cached_vs_full_max_diff"] < 1e-4
    assert result["prefill_padded_vs_eager_max_diff"] < 1e-4
    # Voices with prompts of different lengths (clips of different lengths) join in one prefill.
    assert result["mixed_voice_prompts_max_diff"] < 1e-4
