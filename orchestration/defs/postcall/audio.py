"""Egress recordings -> per-channel 16 kHz mono PCM, with the checks a bad file must fail.

Egress writes audio-only calls as Ogg/Opus: stereo, agent on one channel and caller on the
other per the session report's ``recording_channels``, when it honours DUAL_CHANNEL_AGENT
(``channels.py`` checks that it did). A zero-byte, undecodable or wrong-codec file raises
``RecordingUnusable`` with a reason stored on the call record.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np

STT_RATE = 16_000
ACCEPTED_CODECS = frozenset({"opus", "vorbis"})
_SPEECH_FRAME_S = 0.03
_SPEECH_DBFS = -45.0


class RecordingUnusable(Exception):
    """The recording cannot be transcribed; ``str(exc)`` is the reason recorded for the call."""


@dataclass
class DecodedRecording:
    channels: list[np.ndarray]  # float32 mono at STT_RATE, one per channel
    duration_s: float
    codec: str
    decode_error: str | None = None  # set when decoding stopped early (truncated file)


def decode_recording(data: bytes, accepted_codecs: frozenset[str] = ACCEPTED_CODECS) -> DecodedRecording:
    if not data:
        raise RecordingUnusable("recording is empty (0 bytes): Egress wrote nothing for this call")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
        raise RecordingUnusable(f"recording is not a readable audio file: {exc}") from None
    with container:
        if not container.streams.audio:
            raise RecordingUnusable("recording has no audio stream")
        stream = container.streams.audio[0]
        codec = stream.codec_context.name
        if codec not in accepted_codecs:
            raise RecordingUnusable(
                f"recording codec is {codec!r} in a {container.format.name!r} container; "
                f"expected one of {sorted(accepted_codecs)} (Egress writes Ogg/Opus)"
            )
        n_channels = stream.codec_context.channels or 1
        layout = "stereo" if n_channels == 2 else "mono"
        resampler = av.AudioResampler(format="flt", layout=layout, rate=STT_RATE)
        chunks: list[np.ndarray] = []
        decode_error = None
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1, n_channels if n_channels <= 2 else 1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1, n_channels if n_channels <= 2 else 1))
        except (av.error.InvalidDataError, av.error.FFmpegError, EOFError) as exc:
            # A truncated upload decodes up to the damage; keep what is there and say so.
            decode_error = f"decoding stopped early: {exc}"
    if not chunks:
        raise RecordingUnusable(decode_error or "recording decodes to no audio")
    pcm = np.concatenate(chunks).astype(np.float32)
    channels = [np.ascontiguousarray(pcm[:, i]) for i in range(pcm.shape[1])]
    return DecodedRecording(channels=channels, duration_s=len(pcm) / STT_RATE, codec=codec, decode_error=decode_error)


def speech_fraction(samples: np.ndarray, rate: int = STT_RATE) -> float:
    """Share of 30 ms frames louder than -45 dBFS: ~0 for a silent or dead channel."""
    frame = int(rate * _SPEECH_FRAME_S)
    n = len(samples) // frame
    if n == 0:
        return 0.0
    frames = samples[: n * frame].reshape(n, frame)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    dbfs = 20 * np.log10(np.maximum(rms, 1e-10))
    return float(np.mean(dbfs > _SPEECH_DBFS))
