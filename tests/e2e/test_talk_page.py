"""A person talks to the agent from the browser: the local stack's talk page (livekit-client from
npm) in headless Chromium, whose fake microphone plays a caller's recorded question, through the
real livekit-server to the production agent worker."""

from __future__ import annotations

import subprocess
import sys
import time
import wave

import numpy as np
import pytest

from callcenter.report import Speaker
from devstack.demo_calls import SAMPLE_RATE as DEMO_RATE
from devstack.demo_calls import speak_caller
from devstack.talk_server import CLIENT_JS
from tests.browser.test_e2e_chromium import CHROMIUM, CHROMIUM_ARGS
from tests.conftest import REPO_ROOT, free_port, stop_process, wait_for_port
from tests.e2e.test_inbound_calls import report_for_room

pytestmark = [pytest.mark.slow, pytest.mark.calls, pytest.mark.xdist_group("e2e_calls"), pytest.mark.timeout(240)]


def microphone_wav(path) -> None:  # noqa: ANN001
    """What the fake microphone plays, on a loop: a question, then a long pause (48 kHz mono)."""
    speech = speak_caller("Hello, I would like to ask about my electricity bill please.", "en-us+m3")
    pcm = np.interp(np.linspace(0, len(speech) - 1, int(len(speech) * 48000 / DEMO_RATE)), np.arange(len(speech)), speech)
    pcm = np.concatenate([np.zeros(48000 * 9), pcm, np.zeros(48000 * 30)])
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        w.writeframes((np.clip(pcm, -1, 1) * 32767).astype(np.int16).tobytes())


def test_a_person_talks_to_the_agent_from_the_browser(agent_worker, rollout_sip, e2e_bucket, tmp_path) -> None:
    assert CLIENT_JS.exists(), "livekit-client is not installed: scripts/setup.sh runs npm ci in devstack/talk"
    from playwright.sync_api import sync_playwright

    lk = agent_worker
    port = free_port()
    env = {**lk.env(), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "devstack.talk_server", "--port", str(port)], cwd=REPO_ROOT, env=env)
    wav = tmp_path / "mic.wav"
    microphone_wav(wav)
    try:
        wait_for_port(port, proc, timeout=30)
        args = [*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}", "--autoplay-policy=no-user-gesture-required"]  # fmt: skip
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=args)
            try:
                page = browser.new_page()
                page.goto(f"http://127.0.0.1:{port}/")
                page.click("#call")
                page.wait_for_function("document.getElementById('status').textContent === 'agent on the line'", timeout=60_000)
                page.wait_for_function("document.getElementById('log').textContent.includes('hearing the agent')", timeout=30_000)
                room = page.locator("#log").text_content().split("agent joined ")[1].split()[0]
                # the greeting (~8 s), the question from the microphone, the agent's answer
                time.sleep(25)
                page.click("#hangup")
                page.wait_for_function("document.getElementById('status').textContent === 'call ended'", timeout=10_000)
            finally:
                browser.close()
    finally:
        stop_process(proc)

    report = report_for_room(e2e_bucket, room)
    assert report.automated_agent_disclosed and report.recording_disclosed
    said = " ".join(t.text.lower() for t in report.turns if t.speaker is Speaker.CALLER)
    assert "electricity" in said or "bill" in said, report.turns
