"""The one-graph S3Gen render computes what upstream's flow_inference + hift_inference compute.

Runs tests/tts_chatterbox/render_check.py in .venv-chatterbox (a randomly initialised S3Gen
of the real classes, CPU, eager: the same function that is captured as a CUDA graph on GPUs).
"""

import pytest

from tests.tts_chatterbox.venv_check import needs_venv, run_check

pytestmark = needs_venv


@pytest.fixture(scope="module")
def check() -> dict:
    return run_check("render_check.py", timeout=300)


def test_render_matches_upstream_for_the_same_seed(check):
    assert check["upstream_peak"] > 1e-3  # a real waveform, not silence
    assert check["upstream_vs_render"] <= 1e-5 * check["upstream_peak"]
    assert check["render_len"] == 14 * 960


def test_turbo_meanflow_render_matches_upstream_for_the_same_seed(check):
    assert check["meanflow_steps"] == 2
    assert check["meanflow_upstream_peak"] > 1e-3
    assert check["meanflow_vs_upstream"] <= 1e-5 * check["meanflow_upstream_peak"]


def test_a_window_batched_with_a_longer_one_renders_as_alone(check):
    assert check["alone_peak"] > 1e-3
    assert check["batched_vs_alone"] < 1e-4 * max(1.0, check["alone_peak"])


def test_graph_safe_inverse_stft_equals_torch_istft(check):
    assert check["istft"] < 1e-5


def test_vocoder_batches_return_each_window_as_rendered_alone(check):
    assert check["vocoder_lengths_ok"]
    assert check["vocoder_vs_alone"] < 1e-4
    assert check["windows_rendered"] == 4


def test_a_voice_uploaded_again_under_its_name_renders_in_its_own_timbre(check):
    assert check["reuploaded_vs_own_voice"] < 1e-4 and check["old_vs_own_voice"] < 1e-4
    assert check["reuploaded_vs_old_voice"] > 1e-3  # the two references really sound different


def test_new_buckets_while_serving_render_eagerly_and_are_captured_when_idle(check):
    assert check["capture_warm_up"] == [["capture", 20], ["replay", 20]]
    # Two batches of the cloned voice (prompt 12) render eagerly; its bucket(s) are captured
    # only after them, when nothing waits; the next window replays.
    serving = check["capture_serving"]
    assert serving[:2] == [["eager", 12], ["eager", 12]], serving
    assert serving[2:] and all(e[0] == "capture" and e[1] == 12 for e in serving[2:]), serving
    assert check["capture_after_idle"] == [["replay", 12]]


def test_autocast_runs_encoder_and_hifigan_convolutions_in_bf16_and_pitch_and_source_in_fp32(check):
    # The lever's scope (issue 20): the conformer and HiFi-GAN's convolutions in half
    # precision; the f0 predictor, the harmonic source and the estimator (its own dtype) not.
    assert check["autocast_dtypes"] == {
        "encoder": "torch.bfloat16",
        "estimator": "torch.float32",
        "f0_predictor": "torch.float32",
        "source": "torch.float32",
        "conv_pre": "torch.bfloat16",
        "conv_post": "torch.bfloat16",
    }, check["autocast_dtypes"]
    assert check["autocast_out_dtype"] == "torch.float32"


def test_autocast_render_stays_close_to_the_float32_render(check):
    # Same tokens, same noise: bf16 rounding only (random weights; the GPU bench measures the
    # full-size model's error). Not identical, or the autocast region ran nothing in bf16.
    assert check["autocast_vs_fp32"] > 0
    assert check["autocast_rms_err"] < 0.1, check["autocast_rms_err"]
