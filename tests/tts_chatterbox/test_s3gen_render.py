"""The one-graph S3Gen render computes what upstream's flow_inference + hift_inference compute.

Runs tests/tts_chatterbox/render_check.py in .venv-chatterbox (a randomly initialised S3Gen
of the real classes, CPU, eager: the same function that is captured as a CUDA graph on GPUs).
"""

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_PY = ROOT / ".venv-chatterbox" / "bin" / "python"

pytestmark = pytest.mark.skipif(
    not VENV_PY.exists(), reason="needs .venv-chatterbox: run tests/tts_chatterbox/setup_env.sh"
)


@pytest.fixture(scope="module")
def check() -> dict:
    proc = subprocess.run(
        [str(VENV_PY), str(Path(__file__).with_name("render_check.py"))],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_render_matches_upstream_for_the_same_seed(check):
    assert check["upstream_peak"] > 1e-3  # a real waveform, not silence
    assert check["upstream_vs_render"] <= 1e-5 * check["upstream_peak"]
    assert check["render_len"] == 14 * 960


def test_a_window_batched_with_a_longer_one_renders_as_alone(check):
    assert check["alone_peak"] > 1e-3
    assert check["batched_vs_alone"] < 1e-4 * max(1.0, check["alone_peak"])


def test_graph_safe_inverse_stft_equals_torch_istft(check):
    assert check["istft"] < 1e-5


def test_vocoder_batches_return_each_window_as_rendered_alone(check):
    assert check["vocoder_lengths_ok"]
    assert check["vocoder_vs_alone"] < 1e-4
    assert check["windows_rendered"] == 4
