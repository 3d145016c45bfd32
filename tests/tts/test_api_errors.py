"""Every refusal of POST /v1/audio/speech: status, OpenAI envelope, `param`, no internals."""

from __future__ import annotations

import threading
import time

import pytest

from tests.tts.conftest import RecordingBackend, speak


def assert_envelope(response, status: int, param: str | None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["param"] == param
    assert error["message"] and "Traceback" not in error["message"]
    return error


@pytest.mark.parametrize(
    ("payload", "param", "fragment"),
    [
        (speak(""), "input", "empty"),
        (speak("   \n\t "), "input", "empty"),
        (speak("x" * 61), "input", "limit is 60"),
        (speak("Hello.", voice="alloy"), "voice", "Unknown voice 'alloy'"),
        (speak("Hello.", voice={"id": "nobody"}), "voice", "Unknown voice 'nobody'"),
        (speak("Hello.", response_format="ogg"), "response_format", "Unknown response_format"),
        (speak("Hello.", speed=0.2), "speed", "between 0.25 and 4.0"),
        (speak("Hello.", speed=4.5), "speed", "between 0.25 and 4.0"),
        (speak("Hello.", speed="fast"), "speed", "speed"),
        (speak("Hello.", model="gpt-5-voice"), "model", "Unknown model"),
        (speak("Hello.", exaggeration=0.7), "exaggeration", "Chatterbox option"),
        (speak("Hello.", instructions="Speak like a pirate"), "instructions", "instructions"),
        (speak("Hello.", language="fr"), "language", "not supported"),
        (speak("Hello.", stream_format="websocket"), "stream_format", "stream_format"),
        (speak("Hello.", volume=3), "volume", "Unrecognized request argument"),
        ({"model": "tts-1", "voice": "joe"}, "input", "Missing required parameter"),
    ],
)
def test_bad_speech_requests_are_400_with_param(client, payload, param, fragment):
    response = client.post("/v1/audio/speech", json=payload)
    error = assert_envelope(response, 400, param)
    assert fragment in error["message"]
    assert error["type"] == "invalid_request_error"


def test_input_limit_is_configurable_and_exact(make_client, piper_backend):
    client = make_client(RecordingBackend(piper_backend), max_input_chars=60)
    assert client.post("/v1/audio/speech", json=speak("x" * 60)).status_code == 200
    assert_envelope(client.post("/v1/audio/speech", json=speak("x" * 61)), 400, "input")


# The parametrized case above needs the 60-char limit too.
@pytest.fixture
def client(make_client, piper_backend):
    return make_client(RecordingBackend(piper_backend), max_input_chars=60)


@pytest.mark.parametrize("body", [b"{not json", b"[1, 2]", b'"text"'])
def test_malformed_json_is_400(client, body):
    response = client.post("/v1/audio/speech", content=body, headers={"content-type": "application/json"})
    assert_envelope(response, 400, "body")
    assert 'tts_errors_total{type="400"} 1.0' in client.get("/metrics").text


def test_oversize_speech_body_is_413(client):
    response = client.post("/v1/audio/speech", json=speak("Hello. " * 20_000))
    assert_envelope(response, 413, "input")


def test_backend_failure_is_500_without_internals(make_client, piper_backend):
    backend = RecordingBackend(piper_backend)
    backend.fail_on = "explode"
    client = make_client(backend)
    response = client.post("/v1/audio/speech", json=speak("Please explode now."))
    error = assert_envelope(response, 500, None)
    assert "secret-internal-detail" not in response.text and "/opt/weights" not in response.text
    assert error["type"] == "server_error"
    response = client.post("/v1/audio/speech", json=speak("Please explode now.", stream=False))
    assert_envelope(response, 500, None)
    assert "secret-internal-detail" not in response.text


def test_full_queue_answers_429_with_retry_after(make_client, piper_backend):
    backend = RecordingBackend(piper_backend)
    release = threading.Event()
    entered = threading.Event()

    def hold(index: int) -> None:
        entered.set()
        assert release.wait(30)

    backend.before_segment = hold
    client = make_client(backend, max_concurrency=1, max_queue=1, retry_after_s=3)
    results: list[int] = []

    def call() -> None:
        results.append(client.post("/v1/audio/speech", json=speak("Hold the line.")).status_code)

    first = threading.Thread(target=call)
    first.start()
    assert entered.wait(10)  # the one slot is busy
    second = threading.Thread(target=call)  # waits in the queue (size 1)
    second.start()
    deadline = time.monotonic() + 20
    while client.app.state.runtime.gate.admitted < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert client.app.state.runtime.gate.admitted == 2
    refused = client.post("/v1/audio/speech", json=speak("One more."))
    assert_envelope(refused, 429, None)
    assert refused.headers["retry-after"] == "3"
    assert refused.json()["error"]["type"] == "rate_limit_error"
    release.set()
    first.join(30)
    second.join(30)
    assert results == [200, 200]
    metrics = client.get("/metrics").text
    assert "tts_rejected_total 1.0" in metrics


def test_retry_after_is_the_time_the_queue_takes_to_drain(make_client, piper_backend):
    """One slot, one place in the queue, syntheses measured at ~1.5 s: a full queue drains in
    about 3 s, so "Retry-After: 1" (the floor) sent callers back into a queue still full."""
    backend = RecordingBackend(piper_backend)
    release = threading.Event()
    held = threading.Event()

    def pace(index: int) -> None:
        if index == 0:
            time.sleep(1.5)  # a completed synthesis the gate measures
        else:
            held.set()
            assert release.wait(30)

    backend.before_segment = pace
    client = make_client(backend, max_concurrency=1, max_queue=1, retry_after_s=1)
    assert client.post("/v1/audio/speech", json=speak("Measured.")).status_code == 200
    threads = [threading.Thread(target=client.post, args=("/v1/audio/speech",), kwargs={"json": speak("Hold.")})]
    threads[0].start()
    assert held.wait(10)
    threads.append(threading.Thread(target=client.post, args=("/v1/audio/speech",), kwargs={"json": speak("Wait.")}))
    threads[1].start()
    deadline = time.monotonic() + 20
    while client.app.state.runtime.gate.admitted < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    refused = client.post("/v1/audio/speech", json=speak("One more."))
    release.set()
    for t in threads:
        t.join(30)
    assert refused.status_code == 429
    # two admitted requests ahead, one at a time, ~1.5 s each
    assert 3 <= int(refused.headers["retry-after"]) <= 4, refused.headers["retry-after"]


def test_not_ready_is_503(make_client, piper_backend):
    backend = RecordingBackend(piper_backend)
    gate = threading.Event()
    original_load = backend.load

    def slow_load() -> None:
        gate.wait(30)
        original_load()

    backend.load = slow_load
    client = make_client(backend, wait_ready=False)
    assert client.get("/health").status_code == 200
    ready = client.get("/ready")
    assert ready.status_code == 503 and ready.json()["status"] == "loading"
    response = client.post("/v1/audio/speech", json=speak("Hello."))
    assert_envelope(response, 503, None)
    assert "retry-after" in response.headers
    gate.set()


def test_unknown_route_and_method_use_the_envelope(client):
    assert_envelope(client.get("/v1/audio/nothing"), 404, None)
    assert_envelope(client.get("/v1/audio/speech"), 405, None)
