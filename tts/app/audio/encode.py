"""Streaming encoders for every OpenAI `response_format`, plus resampling and time-stretch.

Audio flows in as float32 mono chunks at the backend's rate and leaves as encoded bytes,
chunk by chunk, so the HTTP response can stream. PyAV (FFmpeg) does resampling, `atempo`
and the compressed codecs; wav and pcm are written by hand (no container latency).
"""

from __future__ import annotations

import struct
from fractions import Fraction

import av
import numpy as np

RESPONSE_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")

CONTENT_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/ogg",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}

# container format, codec, fixed sample rate (None: the server's output rate)
_CODECS = {
    "mp3": ("mp3", "libmp3lame", None),
    "opus": ("ogg", "libopus", 48_000),  # Opus only runs at 48 kHz and its divisors
    "aac": ("adts", "aac", None),
    "flac": ("flac", "flac", None),
}


def _float_to_s16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


class Resampler:
    """float32 mono at `src_rate` -> float32 mono at `dst_rate`, stateful across chunks."""

    def __init__(self, src_rate: int, dst_rate: int) -> None:
        self.src_rate = src_rate
        self.dst_rate = dst_rate
        self._resampler = None if src_rate == dst_rate else av.AudioResampler("flt", "mono", dst_rate)
        self._pts = 0

    def _frame(self, samples: np.ndarray) -> av.AudioFrame:
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = self.src_rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.src_rate)
        self._pts += len(samples)
        return frame

    def process(self, samples: np.ndarray) -> np.ndarray:
        if self._resampler is None or len(samples) == 0:
            return samples.astype(np.float32, copy=False)
        return self._collect(self._resampler.resample(self._frame(samples)))

    def flush(self) -> np.ndarray:
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return self._collect(self._resampler.resample(None))

    @staticmethod
    def _collect(frames: list[av.AudioFrame]) -> np.ndarray:
        if not frames:
            return np.zeros(0, dtype=np.float32)
        return np.concatenate([f.to_ndarray().reshape(-1) for f in frames]).astype(np.float32)


def _atempo_chain(speed: float) -> list[float]:
    """atempo accepts 0.5..2.0 per stage; chain stages for 0.25..4.0 (pitch preserved)."""
    stages: list[float] = []
    remaining = speed
    while remaining > 2.0:
        stages.append(2.0)
        remaining /= 2.0
    while remaining < 0.5:
        stages.append(0.5)
        remaining /= 0.5
    stages.append(remaining)
    return stages


class TimeStretcher:
    """Changes tempo without changing pitch, for backends with no native rate control."""

    def __init__(self, rate: int, speed: float) -> None:
        self.rate = rate
        self.speed = speed
        self._graph: av.filter.Graph | None = None
        self._pts = 0
        if abs(speed - 1.0) > 1e-3:
            graph = av.filter.Graph()
            src = graph.add_abuffer(format="flt", sample_rate=rate, layout="mono", time_base=Fraction(1, rate))
            last = src
            for stage in _atempo_chain(speed):
                node = graph.add("atempo", f"{stage:.6f}")
                last.link_to(node)
                last = node
            sink = graph.add("abuffersink")
            last.link_to(sink)
            graph.configure()
            self._graph = graph

    def _pull(self) -> np.ndarray:
        out = []
        while True:
            try:
                frame = self._graph.pull()
            except (av.error.BlockingIOError, av.error.EOFError):
                break
            out.append(frame.to_ndarray().reshape(-1))
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, dtype=np.float32)

    def process(self, samples: np.ndarray) -> np.ndarray:
        if self._graph is None or len(samples) == 0:
            return samples
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = self.rate
        frame.pts = self._pts
        frame.time_base = Fraction(1, self.rate)
        self._pts += len(samples)
        self._graph.push(frame)
        return self._pull()

    def flush(self) -> np.ndarray:
        if self._graph is None:
            return np.zeros(0, dtype=np.float32)
        self._graph.push(None)
        return self._pull()


def wav_header(sample_rate: int, num_samples: int | None) -> bytes:
    """RIFF/WAVE s16le mono header. Unknown length (streaming) uses 0xFFFFFFFF sizes, as OpenAI does."""
    data_size = 0xFFFFFFFF if num_samples is None else num_samples * 2
    riff_size = 0xFFFFFFFF if num_samples is None else 36 + data_size
    return (
        b"RIFF"
        + struct.pack("<I", riff_size)
        + b"WAVEfmt "
        + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16)
        + b"data"
        + struct.pack("<I", data_size)
    )


class _Sink:
    """A write-only file object that PyAV muxes into; bytes are taken out after each packet."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def write(self, data: bytes) -> int:
        self._buf += data
        return len(data)

    def take(self) -> bytes:
        out = bytes(self._buf)
        self._buf.clear()
        return out


class StreamEncoder:
    """Encode float32 mono chunks at `sample_rate` into `fmt`, yielding bytes as they are ready.

    `total_samples` (known only for whole-file responses) gives wav a correct header.
    """

    def __init__(self, fmt: str, sample_rate: int, *, total_samples: int | None = None) -> None:
        if fmt not in RESPONSE_FORMATS:
            raise ValueError(f"unknown response_format {fmt!r}")
        self.fmt = fmt
        self.input_rate = sample_rate
        self._header_pending = fmt == "wav"
        self._total_samples = total_samples
        self._container = None
        if fmt in _CODECS:
            container_fmt, codec, fixed_rate = _CODECS[fmt]
            self.rate = fixed_rate or sample_rate
            self._resampler = Resampler(sample_rate, self.rate)
            self._sink = _Sink()
            # Ogg buffers about a second per page by default; 20 ms pages let opus stream.
            options = {"page_duration": "20000"} if container_fmt == "ogg" else {}
            self._container = av.open(self._sink, mode="w", format=container_fmt, options=options)
            self._stream = self._container.add_stream(codec, rate=self.rate, layout="mono")
            if fmt == "mp3":
                self._stream.bit_rate = 64_000
            elif fmt == "opus":
                self._stream.bit_rate = 32_000
            elif fmt == "aac":
                self._stream.bit_rate = 64_000
            self._pts = 0
        else:
            self.rate = sample_rate

    def encode(self, samples: np.ndarray) -> bytes:
        if self._container is None:
            out = b""
            if self._header_pending:
                out += wav_header(self.rate, self._total_samples)
                self._header_pending = False
            return out + _float_to_s16(samples).tobytes()
        return self._mux(self._resampler.process(samples))

    def flush(self) -> bytes:
        if self._container is None:
            return self.encode(np.zeros(0, dtype=np.float32)) if self._header_pending else b""
        out = self._mux(self._resampler.flush())
        for packet in self._stream.encode(None):
            self._container.mux(packet)
        self._container.close()
        return out + self._sink.take()

    def _mux(self, samples: np.ndarray) -> bytes:
        if len(samples):
            s16 = _float_to_s16(samples).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(s16, format="s16", layout="mono")
            frame.sample_rate = self.rate
            frame.pts = self._pts
            frame.time_base = Fraction(1, self.rate)
            self._pts += s16.shape[1]
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        return self._sink.take()
