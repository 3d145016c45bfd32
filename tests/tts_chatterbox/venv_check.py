"""Runs a check script in .venv-chatterbox (chatterbox-tts pins torch 2.6 / numpy<2 and must
stay out of .venv; tests/tts_chatterbox/setup_env.sh creates it) and returns its JSON line."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
VENV_PY = ROOT / ".venv-chatterbox" / "bin" / "python"

needs_venv = pytest.mark.skipif(
    not VENV_PY.exists(), reason="needs .venv-chatterbox: run tests/tts_chatterbox/setup_env.sh"
)


def run_check(script: str, timeout: float) -> dict:
    proc = subprocess.run(
        [str(VENV_PY), str(Path(__file__).with_name(script))],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])
