"""The recording's audio format, as Egress writes audio-only dual-channel recordings: stereo
Ogg/Opus at 48 kHz (agent on channel 0, caller on channel 1, as ``SessionReport.recording_channels``
says). The one encoder for everything that writes such a file locally: the demo calls and the
local recorder stand-in."""

from __future__ import annotations

import io

import av
import numpy as np

OPUS_RATE = 48_000


def encode_ogg_opus(samples: np.ndarray, sample_rate: int) -> bytes:
    """Float32 ``[n, 2]`` (stereo, as Egress writes) or ``[n, 1]`` (mono, as a mixed recording can
    come) in [-1, 1] at ``sample_rate`` -> Ogg/Opus bytes."""
    if samples.ndim != 2 or samples.shape[1] not in (1, 2):
        raise ValueError(f"expected samples shaped [n, 2] or [n, 1], got {samples.shape}")
    layout = "stereo" if samples.shape[1] == 2 else "mono"
    buf = io.BytesIO()
    with av.open(buf, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=OPUS_RATE, layout=layout)
        stream.bit_rate = 48_000
        resampler = av.AudioResampler(format="s16", layout=layout, rate=OPUS_RATE)
        pcm = (np.clip(samples, -1, 1) * 32767).astype(np.int16)
        for start in range(0, len(pcm), sample_rate):
            block = np.ascontiguousarray(pcm[start : start + sample_rate]).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(block, format="s16", layout=layout)
            frame.sample_rate = sample_rate
            for rf in resampler.resample(frame):
                container.mux(stream.encode(rf))
        for rf in resampler.resample(None):
            container.mux(stream.encode(rf))
        container.mux(stream.encode(None))
    return buf.getvalue()
