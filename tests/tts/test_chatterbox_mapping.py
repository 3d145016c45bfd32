"""The Chatterbox backend's request mapping and loading, against a model double (no weights here).

The double stands in for `ChatterboxTTS` & co.: same attributes (`sr`, `conds`, `t3`) and
methods (`generate`, `prepare_conditionals`, `from_local`, `from_pretrained`) as upstream.
"""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest
import torch

from tests.tts.conftest import make_clip
from tts.app.backends.base import SegmentRequest, Voice
from tts.app.backends.chatterbox import ChatterboxBackend, build_call


class ModelDouble:
    sr = 24_000

    def __init__(self, *, with_default_voice: bool = True) -> None:
        self.conds = object() if with_default_voice else None
        self.default_conds = self.conds
        self.t3 = torch.nn.Linear(2, 2)
        self.generate_calls: list[tuple[str, dict, object]] = []
        self.prepared: list[tuple[str, float]] = []
        self.autocast: list[object] = []
        self.device = "cpu"

    def prepare_conditionals(self, wav_fpath, exaggeration=0.5):
        self.prepared.append((wav_fpath, exaggeration))
        self.conds = ("clip", wav_fpath)

    def generate(self, text, **kwargs):
        self.autocast.append(torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu"))
        self.generate_calls.append((text, kwargs, self.conds))
        seconds = 0.05 * len(text.split())
        t = torch.arange(int(self.sr * seconds)) / self.sr
        return (0.2 * torch.sin(2 * torch.pi * 220 * t)).unsqueeze(0)


def chatterbox_client(make_client, variant="english", model=None):
    model = model or ModelDouble()
    backend = ChatterboxBackend(variant=variant, model=model)
    return make_client(backend), model


def body(text="Hello there. How are you today?", **extra):
    return {"model": "chatterbox", "input": text, "voice": "default", "response_format": "pcm", **extra}


def test_knobs_reach_generate_per_segment(make_client):
    client, model = chatterbox_client(make_client)
    model.generate_calls.clear()  # warm-up call
    response = client.post("/v1/audio/speech", json=body(exaggeration=0.9, cfg_weight=0.3, temperature=0.6))
    assert response.status_code == 200, response.text
    assert [c[0] for c in model.generate_calls] == ["Hello there.", "How are you today?"]
    for _, kwargs, conds in model.generate_calls:
        assert kwargs == {"exaggeration": 0.9, "cfg_weight": 0.3, "temperature": 0.6}
        assert conds is model.default_conds
    # 24 kHz model output, 24 kHz pcm: the sample count is the model's (no resampling).
    expected = sum(int(24_000 * 0.05 * len(t.split())) for t in ["Hello there.", "How are you today?"])
    assert len(response.content) // 2 == expected


def test_unset_knobs_keep_the_model_defaults(make_client):
    client, model = chatterbox_client(make_client)
    model.generate_calls.clear()
    assert client.post("/v1/audio/speech", json=body("Just this.")).status_code == 200
    assert model.generate_calls[0][1] == {}


def test_speed_is_applied_by_time_stretch(make_client):
    client, _ = chatterbox_client(make_client)
    normal = len(client.post("/v1/audio/speech", json=body("One two three four five six.")).content)
    fast = len(client.post("/v1/audio/speech", json=body("One two three four five six.", speed=2.0)).content)
    assert fast == pytest.approx(normal / 2, rel=0.1)


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"exaggeration": 2.5}, "exaggeration"),
        ({"cfg_weight": -0.1}, "cfg_weight"),
        ({"temperature": 0.0}, "temperature"),
        ({"language": "fr"}, "language"),  # the English model
    ],
)
def test_knob_ranges_and_language_are_validated(make_client, extra, param):
    client, model = chatterbox_client(make_client)
    model.generate_calls.clear()
    response = client.post("/v1/audio/speech", json=body(**extra))
    assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert model.generate_calls == []


def test_multilingual_maps_language_id(make_client):
    client, model = chatterbox_client(make_client, variant="multilingual")
    model.generate_calls.clear()
    assert client.post("/v1/audio/speech", json=body("Bonjour.", language="FR")).status_code == 200
    assert client.post("/v1/audio/speech", json=body("Hello.")).status_code == 200
    assert [c[1]["language_id"] for c in model.generate_calls] == ["fr", "en"]
    bad = client.post("/v1/audio/speech", json=body("Hallo.", language="xx"))
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "language"


def test_cloned_voice_conditionals_are_prepared_once_and_forgotten_on_delete(make_client, tmp_path):
    client, model = chatterbox_client(make_client)
    clip = make_clip(5.0, tmp_path / "anna.wav")
    created = client.post("/v1/audio/voices", data={"name": "anna"}, files={"file": ("anna.wav", clip, "audio/wav")})
    assert created.status_code == 201
    for _ in range(2):
        assert client.post("/v1/audio/speech", json=body("Hi.", voice="anna", exaggeration=0.7)).status_code == 200
    stored = str(tmp_path / "voices" / "anna.wav")
    assert model.prepared == [(stored, 0.7)]
    assert model.generate_calls[-1][2] == ("clip", stored)
    # Back to the built-in voice: its conditionals, not the clone's.
    assert client.post("/v1/audio/speech", json=body("Hi.")).status_code == 200
    assert model.generate_calls[-1][2] is model.default_conds
    assert client.delete("/v1/audio/voices/anna").status_code == 200
    assert client.post("/v1/audio/speech", json=body("Hi.", voice="anna")).status_code == 400


def test_turbo_refuses_clips_its_model_cannot_clone_from_at_upload(make_client, tmp_path):
    # ChatterboxTurboTTS asserts a clip over 5 s: a 4 s clip must fail at upload (400, with
    # the limit), not on every later synthesis with that voice.
    client, model = chatterbox_client(make_client, variant="turbo")
    short = make_clip(4.0, tmp_path / "short.wav")
    refused = client.post("/v1/audio/voices", data={"name": "bo"}, files={"file": ("bo.wav", short, "audio/wav")})
    assert refused.status_code == 400 and "5.1-30 s" in refused.json()["error"]["message"]
    ok = make_clip(6.0, tmp_path / "ok.wav")
    assert (
        client.post("/v1/audio/voices", data={"name": "bo"}, files={"file": ("bo.wav", ok, "audio/wav")}).status_code
        == 201
    )
    # The English model takes the server's own 3 s minimum.
    client, _ = chatterbox_client(make_client)
    assert (
        client.post("/v1/audio/voices", data={"name": "cy"}, files={"file": ("cy.wav", short, "audio/wav")}).status_code
        == 201
    )


def test_no_builtin_voice_still_becomes_ready(make_client):
    client, _ = chatterbox_client(make_client, model=ModelDouble(with_default_voice=False))
    assert client.get("/ready").status_code == 200
    assert client.get("/v1/audio/voices").json()["data"] == []


def test_build_call_for_direct_callers():
    voice = Voice(name="x", backend="clone", reference_clip=None)
    call = build_call(SegmentRequest(text="Hola.", voice=voice, language="es"), "multilingual")
    assert call.kwargs == {"language_id": "es"} and call.audio_prompt_path is None
    with pytest.raises(ValueError, match="English only"):
        build_call(SegmentRequest(text="Hola.", voice=voice, language="es"), "turbo")


@pytest.fixture
def fake_chatterbox(monkeypatch):
    """Registers a `chatterbox` package whose model classes record how they were loaded."""
    loads: list[tuple[str, str, object]] = []

    def model_class(name):
        class FakeModel(ModelDouble):
            @classmethod
            def from_local(cls, ckpt_dir, device):
                loads.append((name, "from_local", (ckpt_dir, device)))
                return cls()

            @classmethod
            def from_pretrained(cls, device):
                loads.append((name, "from_pretrained", device))
                return cls()

        return FakeModel

    package = types.ModuleType("chatterbox")
    monkeypatch.setitem(sys.modules, "chatterbox", package)
    for module, cls in [
        ("tts", "ChatterboxTTS"),
        ("mtl_tts", "ChatterboxMultilingualTTS"),
        ("tts_turbo", "ChatterboxTurboTTS"),
    ]:
        mod = types.ModuleType(f"chatterbox.{module}")
        setattr(mod, cls, model_class(cls))
        monkeypatch.setitem(sys.modules, f"chatterbox.{module}", mod)
    return loads


@pytest.mark.parametrize(
    ("variant", "cls"),
    [("english", "ChatterboxTTS"), ("multilingual", "ChatterboxMultilingualTTS"), ("turbo", "ChatterboxTurboTTS")],
)
def test_variants_load_from_pretrained_or_local(fake_chatterbox, tmp_path, variant, cls):
    ChatterboxBackend(variant=variant, device="cpu").load()
    ChatterboxBackend(variant=variant, device="cpu", checkpoint_dir=tmp_path).load()
    assert fake_chatterbox == [(cls, "from_pretrained", "cpu"), (cls, "from_local", (str(tmp_path), "cpu"))]


@pytest.mark.parametrize(("dtype", "expected"), [("bfloat16", torch.bfloat16), ("float32", False)])
async def test_half_precision_runs_generate_under_autocast(fake_chatterbox, dtype, expected):
    backend = ChatterboxBackend(device="cpu", dtype=dtype)
    backend.load()
    await backend.warmup()
    assert backend.model.autocast == [expected]
    assert backend.model.t3.weight.dtype == torch.float32  # weights untouched (see ReferenceEngine)
    assert backend.sample_rate == 24_000


def test_missing_package_or_checkpoint_reports_not_ready(make_client, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "chatterbox", None)  # import fails as if not installed
    client = make_client(ChatterboxBackend(device="cpu"), wait_ready=False)
    deadline = time.monotonic() + 30
    while (ready := client.get("/ready")).json()["status"] == "loading" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ready.status_code == 503
    assert ready.json()["status"] == "failed"
    assert "chatterbox-tts is not installed" in ready.json()["error"]
    speech = client.post("/v1/audio/speech", json=body())
    assert speech.status_code == 503


class EngineDouble:
    """A batching engine as `chatterbox_fast` provides: capacity known after warm-up, own gauges."""

    sample_rate = 24_000

    def __init__(self) -> None:
        self.max_parallel = 1
        self.closed = False
        self.calls: list = []

    def stream(self, call, cancelled):
        self.calls.append(call)
        self.max_parallel = 6  # "measured" during the warm-up synthesis
        yield np.zeros(2400, dtype=np.float32) + 0.1

    def register_metrics(self, registry):
        from prometheus_client import Gauge

        Gauge("tts_chatterbox_capacity_streams", "test", registry=registry).set_function(lambda: self.max_parallel)

    def close(self):
        self.closed = True


def test_engine_capacity_sizes_the_gate_and_its_metrics_are_served(make_client, monkeypatch):
    engine = EngineDouble()
    monkeypatch.setattr(
        "tts.app.backends.chatterbox.load_engine", lambda model, name, dtype="float32", settings=None: engine
    )
    backend = ChatterboxBackend(model=ModelDouble(), engine="fast")
    client = make_client(backend)
    assert client.app.state.runtime.gate.concurrency == 6
    assert "tts_chatterbox_capacity_streams 6.0" in client.get("/metrics").text
    assert client.post("/v1/audio/speech", json=body("Hi.")).status_code == 200
    client.__exit__(None, None, None)
    assert engine.closed


def test_fast_engine_is_built_from_the_servers_typed_settings(monkeypatch):
    """TTS_CHATTERBOX_FAST_* reach the engine through the server's Settings, as every other knob."""
    from tts.app.core.config import Settings
    from tts.app.main import build_backend

    built: list = []
    monkeypatch.setattr(
        "tts.app.backends.chatterbox_fast.build_engine",
        lambda model, settings: built.append(settings) or EngineDouble(),
    )
    settings = Settings(backend="chatterbox", chatterbox_engine="fast", chatterbox_fast_max_slots=48)
    backend = build_backend(settings)
    backend.model = ModelDouble()
    backend.load()
    assert built == [settings]
    assert isinstance(backend.engine, EngineDouble)
