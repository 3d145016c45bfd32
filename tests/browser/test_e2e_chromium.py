"""End to end: `python -m browser` served by uvicorn on loopback, driven by Debian's headless Chromium.

Loads the list, searches, opens a call, plays its recording from the GCS emulator by clicking a
transcript line, and checks that the transcript and the latency chart render. Each page's
screenshot lands in test-artifacts/browser/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from callcenter.bucket import open_client
from tests.browser.calls import BUCKET
from tests.conftest import REPO_ROOT, free_port, stop_process, wait_for_port

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
SHOTS = REPO_ROOT / "test-artifacts" / "browser"
TIMEOUT_MS = 15_000


def spoken_recording(text: str, seconds: float, out: Path) -> bytes:
    """A real Ogg/Opus recording: espeak-ng speech padded with silence to the call's length."""
    wav = out.with_suffix(".wav")
    subprocess.run(["espeak-ng", "-w", str(wav), text], check=True, timeout=60)
    subprocess.run(
        [
            "ffmpeg",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(wav),
            "-af",
            f"apad=whole_dur={seconds:.2f}",
            "-t",
            f"{seconds:.2f}",
            "-ac",
            "1",
            "-c:a",
            "libopus",
            "-b:a",
            "24k",
            str(out),
        ],
        check=True,
        timeout=60,
    )
    return out.read_bytes()


@pytest.fixture(scope="module")
def browser_url(index_path, recordings_bucket, gcs_emulator, calls, tmp_path_factory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("e2e")
    client = open_client("local", gcs_emulator)
    bucket = client.bucket(recordings_bucket)
    for record, _ in calls:
        if record.recording_path:
            audio = spoken_recording(
                record.transcript_text or "no speech", record.duration_s, work / f"{record.call_id}.ogg"
            )
            bucket.blob(record.recording_path).upload_from_string(audio, content_type="audio/ogg")
    port = free_port()
    env = {
        **os.environ,
        "CALLCENTER_BROWSER_PORT": str(port),
        "CALLCENTER_BROWSER_MODE": "local",
        "CALLCENTER_BROWSER_INDEX_URL": str(index_path),
        "CALLCENTER_RECORDINGS_BUCKET": BUCKET,
        "STORAGE_EMULATOR_HOST": gcs_emulator,
        "CALLCENTER_BROWSER_AUDIT_LOG_PATH": str(work / "audit.jsonl"),
    }
    log = (work / "browser.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "browser"], cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, proc, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture(scope="module")
def page(browser_url):
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport={"width": 1366, "height": 900}, base_url=browser_url)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.console_errors = []
            page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
            yield page
        finally:
            browser.close()


def test_analyst_walkthrough(page, calls):
    """One walk through the app (one test, so the server and Chromium start once under xdist)."""
    list_loads_and_filters(page, calls)
    search_finds_calls(page)
    call_page_plays_audio_from_a_transcript_line(page, calls)
    dashboard_draws_charts(page)
    # Nothing blocked by the Content-Security-Policy, no script error, no missing asset.
    assert page.console_errors == []
    unknown_call_shows_the_404_page(page)


def list_loads_and_filters(page, calls):
    page.goto("/calls")
    rows = page.locator("tr.call-row")
    rows.first.wait_for()
    assert rows.count() == len(calls)
    page.screenshot(path=str(SHOTS / "calls-list.png"), full_page=True)
    page.select_option("select[name=outcome]", "answered")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**/calls?*outcome=answered*")
    assert page.locator("tr.call-row").count() == sum(r.outcome.value == "answered" for r, _ in calls)


def search_finds_calls(page):
    page.goto("/search")
    page.fill("input[name=q]", "cleaning appointment")
    page.click("#search-form button[type=submit]")
    page.wait_for_url("**/search?q=cleaning*")
    assert page.locator("tr.call-row").count() == 2
    page.screenshot(path=str(SHOTS / "search.png"), full_page=True)


def call_page_plays_audio_from_a_transcript_line(page, calls):
    record = next(r for r, _ in calls if r.attempt_id == "attempt-42-2")
    page.goto("/calls")
    page.click(f'a.call-link[href$="{record.call_id}"]')
    page.wait_for_url(f"**/calls/{record.call_id}")
    lines = page.locator("#transcript li")
    assert lines.count() == len(record.transcript)
    assert "[CARD]" in lines.nth(3).inner_text()
    chart = page.locator("svg.latency-chart")
    assert chart.is_visible() and chart.locator("rect.latency-part").count() > 0
    assert chart.bounding_box()["height"] > 50

    target = record.transcript[2]
    lines.nth(2).click()  # click-to-seek: plays from that line's start
    page.wait_for_function(
        "start => { const a = document.getElementById('recording');"
        " return a.readyState >= 2 && !a.paused && a.currentTime > start + 0.3; }",
        arg=target.start,
        timeout=TIMEOUT_MS,
    )
    state = page.evaluate(
        "() => { const a = document.getElementById('recording'); return {t: a.currentTime, d: a.duration, err: a.error}; }"
    )
    assert state["err"] is None and target.start < state["t"] < target.start + 10
    assert abs(state["d"] - record.duration_s) < 1.0
    page.wait_for_selector("#transcript li.playing")
    page.screenshot(path=str(SHOTS / "call-page.png"), full_page=True)


def dashboard_draws_charts(page):
    page.goto("/dashboard")
    charts = page.locator("svg.chart")
    charts.first.wait_for()
    assert charts.count() == 5
    assert page.locator("svg.stacked-bars rect title").count() > 0
    page.screenshot(path=str(SHOTS / "dashboard.png"), full_page=True)


def unknown_call_shows_the_404_page(page):
    response = page.goto("/calls/call-01a1f82f-1e80-73a0-bd96-000000000000")
    assert response.status == 404
    assert "no call" in page.locator("#error-message").inner_text()
    page.screenshot(path=str(SHOTS / "not-found.png"))
