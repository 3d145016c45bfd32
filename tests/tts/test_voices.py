"""The voice library: upload validation, listing, deletion, persistence (volume and bucket)."""

from __future__ import annotations

import subprocess

import pytest

from tests.tts.conftest import RecordingBackend, make_clip, speak


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, bytes]:
    folder = tmp_path_factory.mktemp("clips")
    clips = {
        "good": make_clip(5.0, folder / "good.wav"),
        "short": make_clip(1.0, folder / "short.wav"),
    }
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", str(folder / "good.wav"), str(folder / "good.mp3")],
        check=True,
        timeout=30,
    )
    clips["mp3"] = (folder / "good.mp3").read_bytes()
    return clips


def upload(client, name: str, data: bytes, filename: str = "clip.wav", **fields):
    return client.post("/v1/audio/voices", data={"name": name, **fields}, files={"file": (filename, data, "audio/wav")})


def cloning(piper_backend) -> RecordingBackend:
    """A backend that says it clones (Chatterbox's role), around the real Piper voice: these
    tests upload, list and delete clips; none of them speaks a cloned voice."""
    backend = RecordingBackend(piper_backend, name="chatterbox")
    backend.supports_cloning = True
    return backend


@pytest.fixture
def client(make_client, piper_backend):
    return make_client(cloning(piper_backend))


def test_upload_list_and_delete(client, clips):
    created = upload(client, "agent-anna", clips["good"], language="en", description="warm, friendly")
    assert created.status_code == 201, created.text
    assert created.json()["id"] == "agent-anna" and created.json()["type"] == "cloned"
    listed = {v["id"]: v for v in client.get("/v1/audio/voices").json()["data"]}
    assert listed["joe"]["type"] == "builtin"
    assert listed["agent-anna"]["description"] == "warm, friendly"
    assert listed["agent-anna"]["backend"] == "chatterbox"  # the backend that speaks it
    assert upload(client, "agent-anna", clips["good"]).status_code == 409
    deleted = client.delete("/v1/audio/voices/agent-anna")
    assert deleted.status_code == 200 and deleted.json()["deleted"] is True
    assert "agent-anna" not in {v["id"] for v in client.get("/v1/audio/voices").json()["data"]}
    assert client.delete("/v1/audio/voices/agent-anna").status_code == 404


def test_a_backend_that_cannot_clone_refuses_clone_uploads(make_client, piper_backend, clips, tmp_path):
    """Piper took the clip (201) and then answered every request for it with voice_not_found."""
    piper = make_client(RecordingBackend(piper_backend))
    refused = upload(piper, "agent-anna", clips["good"])
    assert refused.status_code == 400, refused.text
    error = refused.json()["error"]
    assert error["code"] == "cloning_not_supported" and error["param"] == "file"
    assert "piper" in error["message"] and "TTS_BACKEND=chatterbox" in error["message"]
    assert not list((tmp_path / "voices").glob("agent-anna.*"))
    assert "agent-anna" not in {v["id"] for v in piper.get("/v1/audio/voices").json()["data"]}


def test_a_clone_left_on_the_volume_is_listed_as_unserved_and_refused_by_name(make_client, piper_backend, clips):
    """A volume shared with a Chatterbox server: Piper lists its clones with no backend to speak
    them, and naming one is refused, not silently spoken in another voice."""
    assert upload(make_client(cloning(piper_backend)), "agent-anna", clips["good"]).status_code == 201
    piper = make_client(RecordingBackend(piper_backend))
    listed = {v["id"]: v for v in piper.get("/v1/audio/voices").json()["data"]}
    assert listed["joe"]["backend"] == "piper"
    assert listed["agent-anna"]["type"] == "cloned" and listed["agent-anna"]["backend"] is None
    refused = piper.post("/v1/audio/speech", json=speak("Hello.", voice="agent-anna"))
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "voice"
    assert "cannot clone" in refused.json()["error"]["message"]


def test_two_file_parts_in_one_upload_are_a_400(client, clips):
    response = client.post(
        "/v1/audio/voices",
        data={"name": "twice"},
        files=[
            ("file", ("a.wav", clips["good"], "audio/wav")),
            ("audio_sample", ("b.wav", clips["good"], "audio/wav")),
        ],
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == "file", response.text
    assert "one file" in response.json()["error"]["message"]
    assert client.get("/v1/audio/voices").status_code == 200


@pytest.mark.parametrize(
    ("name", "clip", "status", "param"),
    [
        ("too-short", "short", 400, "file"),
        ("not-audio", b"this is not audio at all" * 100, 400, "file"),
        ("Bad Name!", "good", 400, "name"),
        ("joe", "good", 409, "name"),
        ("empty", b"", 400, "file"),
        ("joe\n", "good", 400, "name"),  # "$" let a trailing newline through: a second "joe"
        # FFmpeg's concat demuxer opens the files an upload names: not a clip format.
        ("concat", b"ffconcat version 1.0\nfile good.wav\n", 400, "file"),
    ],
)
def test_upload_validation(client, clips, name, clip, status, param):
    data = clips[clip] if isinstance(clip, str) else clip
    response = upload(client, name, data)
    assert response.status_code == status, response.text
    assert response.json()["error"]["param"] == param


def test_oversize_upload_is_413(make_client, piper_backend, clips):
    client = make_client(cloning(piper_backend), max_upload_bytes=50_000)
    big = clips["good"] * 4  # well over the limit plus form overhead
    response = upload(client, "big", big)
    assert response.status_code == 413
    assert response.json()["error"]["param"] == "file"


def test_missing_fields_and_wrong_content_type(client, clips):
    no_file = client.post("/v1/audio/voices", data={"name": "x"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    no_name = client.post("/v1/audio/voices", files={"file": ("c.wav", clips["good"], "audio/wav")})
    assert no_name.status_code == 400 and no_name.json()["error"]["param"] == "name"
    as_json = client.post("/v1/audio/voices", json={"name": "x"})
    assert as_json.status_code == 400


def test_mp3_clip_is_accepted_and_stored_as_24k_wav(client, clips, tmp_path):
    assert upload(client, "from-mp3", clips["mp3"], filename="clip.mp3").status_code == 201
    stored = (tmp_path / "voices" / "from-mp3.wav").read_bytes()
    assert stored[:4] == b"RIFF" and int.from_bytes(stored[24:28], "little") == 24_000


def test_builtin_voice_cannot_be_deleted(client):
    response = client.delete("/v1/audio/voices/joe")
    assert response.status_code == 400 and response.json()["error"]["param"] == "voice_id"


def test_voices_persist_on_the_volume(make_client, piper_backend, clips, tmp_path):
    first = make_client(cloning(piper_backend))
    assert upload(first, "kept", clips["good"]).status_code == 201
    assert (tmp_path / "voices" / "kept.wav").is_file()
    second = make_client(cloning(piper_backend))  # same TTS_VOICES_DIR, new process state
    assert "kept" in {v["id"] for v in second.get("/v1/audio/voices").json()["data"]}


def test_voices_mirror_to_a_bucket(make_client, piper_backend, clips, tmp_path, gcs_emulator, monkeypatch):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator)
    gcs = storage.Client(
        project="local", credentials=AnonymousCredentials(), client_options={"api_endpoint": gcs_emulator}
    )
    bucket = gcs.create_bucket("tts-voices-test")
    first = make_client(cloning(piper_backend), voices_bucket=bucket.name)
    assert upload(first, "mirrored", clips["good"]).status_code == 201
    assert {b.name for b in bucket.list_blobs()} == {"tts-voices/mirrored.wav", "tts-voices/mirrored.json"}
    # A fresh pod with an empty volume gets the voice back from the bucket.
    fresh = make_client(cloning(piper_backend), voices_bucket=bucket.name, voices_dir=tmp_path / "fresh")
    assert "mirrored" in {v["id"] for v in fresh.get("/v1/audio/voices").json()["data"]}
    assert fresh.delete("/v1/audio/voices/mirrored").status_code == 200
    assert list(bucket.list_blobs()) == []


def test_a_clip_that_decodes_to_hours_is_refused_without_decoding_it_all(tmp_path):
    """A few hundred KB of FLAC can hold hours of a constant level; decoding all of it took
    gigabytes. Decoding stops just past the longest clip allowed."""
    from tts.app.voices import CLIP_SAMPLE_RATE, decode_clip

    path = tmp_path / "hours.flac"
    subprocess.run(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "aevalsrc=0.5:s=24000:d=3600",
            "-c:a",
            "flac",
            str(path),
        ],
        check=True,
        timeout=120,
    )
    data = path.read_bytes()
    assert len(data) < 10 * 1024 * 1024  # under the upload limit
    samples, seconds = decode_clip(data, max_seconds=30.0)
    assert 30.0 < seconds < 31.0  # just past the limit, not the hour the file holds
    assert len(samples) < 31 * CLIP_SAMPLE_RATE


def test_a_chunked_upload_over_the_limit_is_refused_before_it_is_spooled(make_client, piper_backend):
    """No Content-Length: the body is counted as it arrives and refused once over the limit
    (before, the whole body was spooled to disk, then refused)."""
    client = make_client(cloning(piper_backend), max_upload_bytes=50_000)
    sent = {"bytes": 0}
    boundary = "xyz"

    def body():
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="c.wav"\r\n'
            "Content-Type: audio/wav\r\n\r\n"
        ).encode()
        for _ in range(200):  # 200 x 64 KB = 12.5 MB, never declared
            sent["bytes"] += 65536
            yield b"\0" * 65536
        yield f"\r\n--{boundary}--\r\n".encode()

    response = client.post(
        "/v1/audio/voices", content=body(), headers={"content-type": f"multipart/form-data; boundary={boundary}"}
    )
    assert response.status_code == 413 and response.json()["error"]["param"] == "file"
    assert "50000 bytes" in response.json()["error"]["message"]


def test_a_chunked_speech_body_over_the_limit_is_413(client):
    def body():
        yield b'{"model": "tts-1", "voice": "joe", "input": "'
        for _ in range(64):
            yield b"a" * 65536
        yield b'"}'

    response = client.post("/v1/audio/speech", content=body(), headers={"content-type": "application/json"})
    assert response.status_code == 413 and response.json()["error"]["code"] == "body_too_large"


async def test_body_limits_stop_reading_at_the_limit():
    """At the ASGI level (the test client buffers whole bodies): chunks are pulled only until
    the limit is passed, then 413; the route never runs."""
    from tts.app.main import BodyLimit, BodyLimits

    pulled, sent, reached = [], [], []

    async def receive():
        pulled.append(1)
        return {"type": "http.request", "body": b"\0" * 65536, "more_body": len(pulled) < 200}

    async def send(message):
        sent.append(message)

    async def route(scope, receive, send):
        reached.append(scope["path"])

    app = BodyLimits(route, {"/v1/audio/voices": BodyLimit(100_000, "file", "The clip is larger than 100000 bytes.")})
    scope = {"type": "http", "method": "POST", "path": "/v1/audio/voices", "headers": []}
    await app(scope, receive, send)
    assert len(pulled) == 2 and reached == []  # 128 KB read of the 12.5 MB on offer
    assert sent[0]["status"] == 413
