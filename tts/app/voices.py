"""The voice library: the backend's built-in voices plus uploaded reference clips.

Uploaded clips are validated (decodable audio, length, size), normalized to 24 kHz mono
16-bit WAV and kept in ``TTS_VOICES_DIR`` (a volume). With ``TTS_VOICES_BUCKET`` set they
are mirrored to GCS too and fetched back at start-up, so a new pod has every voice.
"""

from __future__ import annotations

import io
import json
import logging
import re
import threading
import wave
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from tts.app.audio.encode import _float_to_s16
from tts.app.backends.base import SpeechBackend, Voice

log = logging.getLogger(__name__)

CLIP_SAMPLE_RATE = 24_000
# \Z, not $: "$" also matches before a final newline, and "joe\n" was a voice of its own.
VOICE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\Z")


class VoiceError(Exception):
    """A request about voices that cannot be honoured; `status` and `param` for the envelope."""

    def __init__(self, status: int, message: str, param: str | None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param


@dataclass(frozen=True)
class ClipRules:
    min_seconds: float = 3.0
    max_seconds: float = 30.0
    max_bytes: int = 10 * 1024 * 1024


# Containers a reference clip may come in. FFmpeg reads far more (its concat demuxer even
# opens files named inside the upload), none of which a recorded voice needs.
CLIP_FORMATS = {"wav", "mp3", "flac", "ogg", "mov,mp4,m4a,3gp,3g2,mj2", "aac", "webm", "matroska,webm"}


def decode_clip(data: bytes, max_seconds: float = 3600.0) -> tuple[np.ndarray, float]:
    """Decode a wav/mp3/flac/ogg/m4a/webm clip to float32 mono at 24 kHz; returns (samples, seconds).

    Decoding stops past ``max_seconds`` (the length is then reported as just over it): a few
    KB of FLAC can hold hours of audio, and decoding all of it took gigabytes."""
    limit = int(max_seconds * CLIP_SAMPLE_RATE) + 1
    try:
        with av.open(io.BytesIO(data)) as container:
            if container.format.name not in CLIP_FORMATS:
                raise VoiceError(400, "The uploaded file is not wav, mp3, flac, ogg, m4a or webm audio.", "file")
            if not container.streams.audio:
                raise VoiceError(400, "The uploaded file has no audio stream.", "file")
            resampler = av.AudioResampler("flt", "mono", CLIP_SAMPLE_RATE)
            parts, n = [], 0
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    parts.append(out.to_ndarray().reshape(-1))
                    n += len(parts[-1])
                if n >= limit:
                    break
            else:
                for out in resampler.resample(None):
                    parts.append(out.to_ndarray().reshape(-1))
                    n += len(parts[-1])
    except VoiceError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError):
        raise VoiceError(
            400, "The uploaded file is not audio this server can decode (use wav, mp3, flac or ogg).", "file"
        ) from None
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, dtype=np.float32)
    return samples, len(samples) / CLIP_SAMPLE_RATE


def _wav_bytes(samples: np.ndarray) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(CLIP_SAMPLE_RATE)
        wav.writeframes(_float_to_s16(samples).tobytes())
    return buf.getvalue()


class BucketMirror:
    """Copies of the clips in a GCS bucket (the emulator locally, via STORAGE_EMULATOR_HOST)."""

    def __init__(self, bucket_name: str, prefix: str) -> None:
        import os

        from google.cloud import storage

        emulator = os.environ.get("STORAGE_EMULATOR_HOST")
        if emulator:
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(
                project="local", credentials=AnonymousCredentials(), client_options={"api_endpoint": emulator}
            )
        else:
            client = storage.Client()
        self.bucket = client.bucket(bucket_name)
        self.prefix = prefix

    def upload(self, name: str, files: dict[str, bytes]) -> None:
        for suffix, data in files.items():
            self.bucket.blob(f"{self.prefix}{name}{suffix}").upload_from_string(data)

    def delete(self, name: str) -> None:
        for suffix in (".wav", ".json"):
            blob = self.bucket.blob(f"{self.prefix}{name}{suffix}")
            if blob.exists():
                blob.delete()

    def download_all(self, directory: Path) -> int:
        count = 0
        for blob in self.bucket.list_blobs(prefix=self.prefix):
            relative = blob.name[len(self.prefix) :]
            if "/" in relative or not relative.endswith((".wav", ".json")):
                continue
            target = directory / relative
            if not target.exists():
                blob.download_to_filename(str(target))
                count += 1
        return count


class VoiceLibrary:
    def __init__(
        self,
        backend: SpeechBackend,
        directory: Path,
        *,
        rules: ClipRules | None = None,
        aliases: dict[str, str] | None = None,
        mirror: BucketMirror | None = None,
    ) -> None:
        self.backend = backend
        self.directory = Path(directory)
        self.rules = rules or ClipRules()
        self.aliases = aliases or {}
        self.mirror = mirror
        self._lock = threading.Lock()

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        if self.mirror is not None:
            fetched = self.mirror.download_all(self.directory)
            log.info("fetched %d voice files from the voices bucket", fetched)

    def builtin(self) -> dict[str, Voice]:
        return {v.name: v for v in self.backend.voices()}

    def cloned(self) -> dict[str, Voice]:
        voices = {}
        for meta_path in sorted(self.directory.glob("*.json")):
            try:
                meta = json.loads(meta_path.read_text())
            except (OSError, ValueError):
                log.warning("skipping unreadable voice metadata %s", meta_path)
                continue
            clip = meta_path.with_suffix(".wav")
            if clip.is_file():
                voices[meta_path.stem] = Voice(
                    name=meta_path.stem,
                    # the backend that speaks it; None where this one cannot (a clip left on a
                    # volume shared with a cloning server)
                    backend=self.backend.name if self.backend.supports_cloning else None,
                    reference_clip=clip,
                    language=meta.get("language"),
                    description=meta.get("description", ""),
                    builtin=False,
                )
        return voices

    def all(self) -> list[Voice]:
        return list(self.builtin().values()) + list(self.cloned().values())

    def resolve(self, name: str) -> Voice:
        """The voice a request names (after explicit aliases); a 400 if there is none."""
        target = self.aliases.get(name, name)
        voice = self.builtin().get(target)
        if voice is None and VOICE_NAME.match(target):
            voice = self.cloned().get(target)
        if voice is None:
            names = ", ".join(sorted(v.name for v in self.all())) or "none"
            raise VoiceError(400, f"Unknown voice '{name}'. Available voices: {names} (GET /v1/audio/voices).", "voice")
        if not voice.builtin and not self.backend.supports_cloning:
            raise VoiceError(
                400,
                f"Voice '{name}' is a cloned voice; the {self.backend.name} backend cannot clone voices "
                "(TTS_BACKEND=chatterbox can).",
                "voice",
            )
        return voice

    def add(self, name: str, data: bytes, *, language: str | None = None, description: str = "") -> Voice:
        if not VOICE_NAME.match(name or ""):
            raise VoiceError(
                400,
                "Voice name must be 1-64 characters of a-z, 0-9, '_' or '-', starting with a letter or digit.",
                "name",
            )
        if name in self.builtin() or name in self.aliases:
            raise VoiceError(409, f"'{name}' is a built-in voice name; choose another.", "name")
        if len(data) > self.rules.max_bytes:
            raise VoiceError(413, f"The clip is larger than {self.rules.max_bytes} bytes.", "file")
        if not data:
            raise VoiceError(400, "The uploaded file is empty.", "file")
        samples, seconds = decode_clip(data, max_seconds=self.rules.max_seconds)
        if seconds < self.rules.min_seconds or seconds > self.rules.max_seconds:
            raise VoiceError(
                400,
                f"The clip is {seconds:.1f} s long; reference clips must be {self.rules.min_seconds:g}-{self.rules.max_seconds:g} s of one speaker.",
                "file",
            )
        if float(np.sqrt(np.mean(samples**2))) < 1e-3:
            raise VoiceError(400, "The clip is silent.", "file")
        wav = _wav_bytes(samples)
        meta = json.dumps({"language": language, "description": description, "seconds": round(seconds, 2)}).encode()
        with self._lock:
            if (self.directory / f"{name}.json").exists():
                raise VoiceError(409, f"Voice '{name}' already exists; delete it first to replace it.", "name")
            (self.directory / f"{name}.wav").write_bytes(wav)
            (self.directory / f"{name}.json").write_bytes(meta)
        if self.mirror is not None:
            self.mirror.upload(name, {".wav": wav, ".json": meta})
        return self.cloned()[name]

    def delete(self, name: str) -> Voice:
        if name in self.builtin():
            raise VoiceError(400, f"'{name}' is a built-in voice and cannot be deleted.", "voice_id")
        voice = self.cloned().get(name) if VOICE_NAME.match(name) else None
        if voice is None:
            raise VoiceError(404, f"No cloned voice named '{name}'.", "voice_id")
        with self._lock:
            for suffix in (".wav", ".json"):
                (self.directory / f"{name}{suffix}").unlink(missing_ok=True)
        if self.mirror is not None:
            self.mirror.delete(name)
        forget = getattr(self.backend, "forget_voice", None)
        if forget is not None:
            forget(voice)
        return voice
