"""The fast engine streams Chatterbox-Turbo end to end: batched GPT-2 T3 + 2-step meanflow S3Gen.

Runs turbo_engine_check.py in .venv-chatterbox (CPU, random weights); see setup_env.sh.
"""

import pytest

from tests.tts_chatterbox.venv_check import needs_venv, run_check

pytestmark = needs_venv

SAMPLES_PER_TOKEN = 960  # 24 kHz audio, 25 speech tokens per second
TURBO_SILENCE_TOKENS = 3  # upstream Turbo ends every sentence with 3 S3GEN_SIL tokens


@pytest.fixture(scope="module")
def result() -> dict:
    return run_check("turbo_engine_check.py", timeout=240)


def test_turbo_engine_streams_concurrent_requests_and_frees_cancelled_slot(result):
    assert result["turbo"] is True
    assert result["rows_per_slot"] == 1  # no CFG pair
    assert result["n_timesteps"] == 2
    assert result["meanflow"] is True
    # cfg_weight / exaggeration (passed on request "b") do not reach Turbo's decode job.
    assert result["ignored_kwargs_same_job"] is True

    requests = result["requests"]
    assert set(requests) == {"a", "b"}
    for key, r in requests.items():
        assert "error" not in r, f"{key}: {r['error']}"
        # stop_on_eos=False: every budgeted token is audio, plus Turbo's trailing silence.
        assert r["samples"] == (r["max_new_tokens"] + TURBO_SILENCE_TOKENS) * SAMPLES_PER_TOKEN, (key, r)
        assert r["chunks"] > 1, (key, r)  # streamed in windows, not rendered at the end
        assert all(n > 0 and n % SAMPLES_PER_TOKEN == 0 for n in r["chunk_samples"]), (key, r)
        assert r["finite"], (key, r)
        assert r["peak"] > 1e-4, (key, r)

    # The cancelled request gave audio, then nothing more, and its slot came back.
    cancelled = result["cancelled"]
    assert cancelled["first_samples"] > 0
    assert cancelled["chunks_after_cancel"] == 0
    assert cancelled["job_cancelled"] and cancelled["job_finished"], cancelled
    assert result["active_after"] == 0
    assert result["active_streams"] == 0
    assert result["free_slots"] == 4


def test_a_slow_reader_gets_its_backlog_in_planned_windows(result):
    slow = result["slow_reader"]
    # The caller read nothing while T3 decoded most of the sentence...
    assert slow["backlog_tokens"] > 2 * slow["longest_captured_window"], slow
    # ...yet no window is longer than the vocoder's captured shapes, and every token is heard.
    assert max(slow["window_sizes"]) <= slow["longest_captured_window"], slow
    assert slow["samples"] == (slow["max_new_tokens"] + TURBO_SILENCE_TOKENS) * SAMPLES_PER_TOKEN, slow


def test_closing_the_engine_fails_streams_in_flight_at_once(result):
    shutdown = result["shutdown"]
    assert shutdown["error"] and "shutting down" in shutdown["error"], shutdown
    assert shutdown["seconds"] < 30, shutdown  # not the 60 s token timeout
