"""The image entry points: Buildpacks run `python serve.py` from a copy of tts/ alone."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time

import httpx

from tests.conftest import REPO_ROOT, free_port, wait_for_port

TTS_DIR = REPO_ROOT / "tts"


def test_serve_py_runs_from_a_folder_not_named_tts(tmp_path):
    workspace = tmp_path / "workspace"  # what Cloud Buildpacks call the app folder
    shutil.copytree(TTS_DIR, workspace, ignore=shutil.ignore_patterns("__pycache__", ".local"))
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TTS_")},
        "PORT": str(port),  # the platform's variable
        "TTS_HOST": "127.0.0.1",
        "TTS_BACKEND": "espeak",
        "TTS_VOICES_DIR": str(tmp_path / "voices"),
        "TTS_LOG_LEVEL": "warning",
        "PYTHONPATH": "",
    }
    proc = subprocess.Popen([sys.executable, "serve.py"], cwd=workspace, env=env)
    try:
        wait_for_port(port, proc, timeout=30)
        deadline = time.monotonic() + 30
        while (ready := httpx.get(f"http://127.0.0.1:{port}/ready", timeout=5)).status_code != 200:
            assert time.monotonic() < deadline, ready.text
            time.sleep(0.05)
        assert ready.json()["backend"] == "espeak"
    finally:
        proc.terminate()
        proc.wait(10)


def test_procfile_and_dockerfile_entry_points():
    assert (TTS_DIR / "Procfile").read_text().strip() == "web: python serve.py"
    dockerfile = (TTS_DIR / "Dockerfile").read_text()
    assert re.search(r"^USER 10001$", dockerfile, re.M), "the image must not run as root"
    assert 'CMD ["python", "-m", "tts.app"]' in dockerfile


def test_chatterbox_only_in_the_image_requirements():
    assert re.search(r"^chatterbox-tts==", (TTS_DIR / "requirements.txt").read_text(), re.M)
    for lock in (REPO_ROOT / "requirements").glob("*"):
        assert "chatterbox" not in lock.read_text().lower(), f"{lock} must not pull chatterbox-tts into dev"
