"""Streaming: audio leaves before the last sentence is synthesized; a hang-up stops synthesis."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from tests.tts.conftest import RecordingBackend, speak

SENTENCES = [
    "Good morning, this is the clinic calling.",
    "We would like to confirm your appointment.",
    "It is booked for Tuesday at ten.",
    "Please say yes to confirm or no to reschedule.",
]


def test_first_chunk_arrives_before_last_sentence_starts(serve, piper_backend):
    backend = RecordingBackend(piper_backend)
    first_chunk_seen = threading.Event()
    last = len(SENTENCES) - 1

    def hold_last_sentence(index: int) -> None:
        # The last sentence may only start once the client holds audio. A server that
        # buffered the whole text would never send it, and this wait would time out.
        if index == last:
            backend.record("waiting-for-client" if first_chunk_seen.wait(30) else "timed-out")

    backend.before_segment = hold_last_sentence
    base = serve(backend)
    with httpx.stream("POST", f"{base}/v1/audio/speech", json=speak(" ".join(SENTENCES)), timeout=60) as response:
        assert response.status_code == 200
        chunks = response.iter_bytes()
        first = next(chunks)
        backend.record("client:first-chunk")
        first_chunk_seen.set()
        rest = b"".join(chunks)
    assert first[:4] == b"RIFF" and len(first) > 44  # header and audio, not only a header
    assert len(rest) > 0
    events = backend.events
    assert "timed-out" not in events
    assert events.index("client:first-chunk") < events.index(f"start:{last}")
    assert backend.texts == SENTENCES  # split into sentences, spoken in order


def test_client_disconnect_cancels_remaining_segments(serve, piper_backend):
    backend = RecordingBackend(piper_backend)
    client_gone = threading.Event()

    def after_hangup(index: int) -> None:
        if index == 1:  # the second sentence waits until the caller has hung up
            client_gone.wait(30)

    backend.before_segment = after_hangup
    base = serve(backend)
    with httpx.stream("POST", f"{base}/v1/audio/speech", json=speak(" ".join(SENTENCES)), timeout=60) as response:
        next(response.iter_bytes())
    client_gone.set()  # the response is closed: the connection is gone
    deadline = time.monotonic() + 20
    metrics = ""
    while time.monotonic() < deadline:
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        if "tts_cancelled_total 1.0" in metrics:
            break
        time.sleep(0.05)
    assert "tts_cancelled_total 1.0" in metrics
    time.sleep(0.3)  # give a (wrongly) continuing synthesis the chance to show itself
    started = [e for e in backend.events if e.startswith("start:")]
    assert f"start:{len(SENTENCES) - 1}" not in started
    assert "tts_active_syntheses 0.0" in httpx.get(f"{base}/metrics", timeout=5).text
    # The server still serves new requests afterwards.
    backend.before_segment = None
    assert httpx.post(f"{base}/v1/audio/speech", json=speak("Still here."), timeout=30).status_code == 200


def test_whole_file_request_stops_when_the_caller_leaves(serve, piper_backend):
    backend = RecordingBackend(piper_backend)
    client_gone = threading.Event()
    backend.before_segment = lambda index: client_gone.wait(30) if index == 1 else None
    base = serve(backend)
    with pytest.raises(httpx.ReadTimeout):  # the caller gives up and closes the connection
        httpx.post(
            f"{base}/v1/audio/speech", json=speak(" ".join(SENTENCES), stream=False), timeout=httpx.Timeout(2, read=1)
        )
    client_gone.set()
    deadline = time.monotonic() + 20
    while "tts_cancelled_total 1.0" not in (metrics := httpx.get(f"{base}/metrics", timeout=5).text):
        assert time.monotonic() < deadline, "the abandoned synthesis was not cancelled"
        time.sleep(0.05)
    assert 'status="cancelled"' in metrics
    assert f"start:{len(SENTENCES) - 1}" not in backend.events
    assert "tts_active_syntheses 0.0" in metrics


def test_a_queued_caller_who_leaves_frees_its_place(serve, piper_backend):
    backend = RecordingBackend(piper_backend)
    release, holding = threading.Event(), threading.Event()

    def hold_first_segment(index: int) -> None:
        if index == 0:
            holding.set()
            release.wait(30)

    backend.before_segment = hold_first_segment
    base = serve(backend, max_concurrency=1, max_queue=1)
    holder = threading.Thread(
        target=lambda: httpx.post(f"{base}/v1/audio/speech", json=speak("Holding the only slot."), timeout=60)
    )
    holder.start()
    try:
        # Only once the holder owns the slot is the second caller sure to queue behind it.
        assert holding.wait(30), "the first request never reached the model"
        with pytest.raises(httpx.ReadTimeout):  # queued behind the holder, then gives up
            httpx.post(f"{base}/v1/audio/speech", json=speak("Waiting in line."), timeout=httpx.Timeout(2, read=1))
        deadline = time.monotonic() + 20
        while "tts_queue_depth 0.0" not in (metrics := httpx.get(f"{base}/metrics", timeout=5).text):
            assert time.monotonic() < deadline, "the abandoned request kept its place in the queue"
            time.sleep(0.05)
        assert "tts_cancelled_total 1.0" in metrics
        # It never reached the model.
        assert backend.texts == ["Holding the only slot."]
    finally:
        release.set()
        holder.join(30)
    assert httpx.post(f"{base}/v1/audio/speech", json=speak("Next please."), timeout=30).status_code == 200
