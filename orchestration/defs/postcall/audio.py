"""Egress recordings -> per-channel 16 kHz mono PCM, with the checks a bad file must fail.

Egress writes audio-only calls as Ogg/Opus: stereo, agent on one channel and caller on the
other per the session report's ``recording_channels``, when it honours DUAL_CHANNEL_AGENT
(``channels.py`` checks that it did). A zero-byte, undecodable or wrong-codec file raises
``RecordingUnusable`` with a reason stored on the call record.
"""

from __future__ import annotations

import io
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import av
import numpy as np

STT_RATE = 16_000
ACCEPTED_CODECS = frozenset({"opus", "vorbis"})
_SPEECH_FRAME_S = 0.03
_SPEECH_DBFS = -45.0


class RecordingUnusable(Exception):
    """The recording cannot be transcribed; ``str(exc)`` is the reason recorded for the call."""


class RecordingTooLong(RecordingUnusable):
    """Longer than any call may last: never transcribed (a batch's time and memory are bounded)."""


@dataclass
class DecodedRecording:
    channels: list[np.ndarray]  # float32 mono at STT_RATE, one per channel
    duration_s: float
    codec: str
    decode_error: str | None = None  # set when decoding stopped early (truncated file)


BLOCK_S = 60.0  # decoded a block at a time: a multiple of every frame length used on it (30 ms, 50 ms)


class RecordingReader:
    """Decodes a recording a block at a time (float32 ``[n, channels]`` at STT_RATE), as often as asked.

    The whole call is never held as PCM (that took about 1.4 GB an hour of audio, with the copies).
    Opening checks the file (empty, unreadable, no audio, wrong codec: ``RecordingUnusable``);
    ``decode_error`` is set once a pass stopped early at damage (a truncated upload).
    """

    def __init__(
        self, data: bytes, accepted_codecs: frozenset[str] = ACCEPTED_CODECS, max_duration_s: float | None = None
    ) -> None:
        self.max_samples = int(max_duration_s * STT_RATE) if max_duration_s else None
        if not data:
            raise RecordingUnusable("recording is empty (0 bytes): Egress wrote nothing for this call")
        self._data = data
        with self._open() as container:
            if not container.streams.audio:
                raise RecordingUnusable("recording has no audio stream")
            stream = container.streams.audio[0]
            self.codec = stream.codec_context.name
            if self.codec not in accepted_codecs:
                raise RecordingUnusable(
                    f"recording codec is {self.codec!r} in a {container.format.name!r} container; "
                    f"expected one of {sorted(accepted_codecs)} (Egress writes Ogg/Opus)"
                )
            channels = stream.codec_context.channels or 1
        self.n_channels = 2 if channels == 2 else 1  # more than two are mixed down to one
        self.decode_error: str | None = None

    def _open(self):
        try:
            return av.open(io.BytesIO(self._data), mode="r")
        except (av.error.InvalidDataError, av.error.FFmpegError) as exc:
            raise RecordingUnusable(f"recording is not a readable audio file: {exc}") from None

    def blocks(self, block_s: float = BLOCK_S) -> Iterator[tuple[int, np.ndarray]]:
        """(first sample's index, block) pairs; every block but the last holds exactly ``block_s``.

        ``RecordingTooLong`` once more than ``max_duration_s`` has decoded: a file that decodes to
        hours (Egress left recording, a damaged length) stops there, whatever its size in bytes.
        """
        yield from _in_blocks(self._decoded(), int(block_s * STT_RATE), self.max_samples)

    def _decoded(self) -> Iterator[np.ndarray]:
        """The audio at ``STT_RATE`` as the decoder gives it, in pieces of any length."""
        with self._open() as container:
            stream = container.streams.audio[0]
            layout = "stereo" if self.n_channels == 2 else "mono"
            resampler = av.AudioResampler(format="flt", layout=layout, rate=STT_RATE)
            try:
                for frame in itertools.chain(container.decode(stream), [None]):
                    for out in resampler.resample(frame):
                        yield out.to_ndarray().reshape(-1, self.n_channels)
            except (av.error.InvalidDataError, av.error.FFmpegError, EOFError) as exc:
                # A truncated upload decodes up to the damage; keep what is there and say so.
                self.decode_error = f"decoding stopped early: {exc}"


def _in_blocks(pieces: Iterable[np.ndarray], size: int, max_samples: int | None) -> Iterator[tuple[int, np.ndarray]]:
    """(first sample's index, block) pairs of ``size`` samples from pieces of any length (the last
    block holds what is left); ``RecordingTooLong`` once more than ``max_samples`` came."""
    pending: list[np.ndarray] = []
    held = start = 0
    for pcm in pieces:
        pending.append(pcm)
        held += len(pcm)
        if max_samples is not None and start + held > max_samples:
            raise RecordingTooLong(
                f"recording runs past {max_samples / STT_RATE / 60:.0f} minutes, longer than "
                "a call may last: not transcribed"
            )
        while held >= size:
            joined = np.concatenate(pending)
            yield start, joined[:size]
            start += size
            pending, held = [joined[size:]], held - size
    if held:
        yield start, np.concatenate(pending)


def decode_recording(data: bytes, accepted_codecs: frozenset[str] = ACCEPTED_CODECS) -> DecodedRecording:
    """The whole recording in memory: for short audio and tests (the pipeline reads ``RecordingReader`` blocks)."""
    reader = RecordingReader(data, accepted_codecs)
    blocks = [block for _, block in reader.blocks()]
    if not blocks:
        raise RecordingUnusable(reader.decode_error or "recording decodes to no audio")
    pcm = np.concatenate(blocks).astype(np.float32)
    channels = [np.ascontiguousarray(pcm[:, i]) for i in range(pcm.shape[1])]
    return DecodedRecording(
        channels=channels, duration_s=len(pcm) / STT_RATE, codec=reader.codec, decode_error=reader.decode_error
    )


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


class SegmentedRecordingReader:
    """A recording made of segments (stopped for a payment step, then started again as a new
    file: Egress cannot pause), read as one: each segment at its offset on the call's clock,
    silence for the gaps, so turn times line up with the session report's. Same interface as
    ``RecordingReader``; ``paused_spans`` are the gaps (seconds), where nothing was recorded."""

    def __init__(self, parts: list[tuple[float, RecordingReader]], max_duration_s: float | None = None) -> None:
        if not parts:
            raise RecordingUnusable("recording has no segments")
        self._parts = sorted(parts, key=lambda p: p[0])
        self.max_samples = int(max_duration_s * STT_RATE) if max_duration_s else None
        first = self._parts[0][1]
        self.codec = first.codec
        self.n_channels = first.n_channels
        for index, (_, reader) in enumerate(self._parts):
            if reader.n_channels != self.n_channels:
                raise RecordingUnusable(
                    f"recording segment {index} has {reader.n_channels} channel(s), the first {self.n_channels}: "
                    "the speakers' channels cannot be joined"
                )
        self.decode_error: str | None = None
        self.paused_spans: list[tuple[float, float]] = []

    def _pcm(self) -> Iterator[np.ndarray]:
        """The joined call as pieces: silence, then a segment, then silence..."""
        cursor = 0
        self.paused_spans = []
        for offset_s, reader in self._parts:
            at = int(round(offset_s * STT_RATE))
            if at > cursor:
                self.paused_spans.append((round(cursor / STT_RATE, 3), round(at / STT_RATE, 3)))
                for start in range(cursor, at, int(BLOCK_S * STT_RATE)):
                    yield np.zeros((min(at - start, int(BLOCK_S * STT_RATE)), self.n_channels), np.float32)
                cursor = at
            # a segment that starts before the previous one's audio ended (clocks a few ms apart)
            # follows it: nothing of either is dropped
            for _, block in reader.blocks():
                cursor += len(block)
                yield block
            if reader.decode_error and self.decode_error is None:
                self.decode_error = reader.decode_error

    def blocks(self, block_s: float = BLOCK_S) -> Iterator[tuple[int, np.ndarray]]:
        self.decode_error = None
        yield from _in_blocks(self._pcm(), int(block_s * STT_RATE), self.max_samples)


def open_recording(
    first: bytes,
    segments: list[tuple[str, float]],
    read_object: Callable[[str], bytes | None],
    *,
    max_duration_s: float | None = None,
    max_bytes: int | None = None,
) -> RecordingReader | SegmentedRecordingReader:
    """The call's recording: ``first`` (the report's ``recording_path``) alone, or joined with the
    report's other segments (``(path, start_s)`` in call order, the first included). A segment
    that is missing or unreadable makes the whole recording unusable, with the reason: a joined
    recording with a hole where audio should be would put turns in the wrong place."""
    if len(segments) < 2:
        return RecordingReader(first, max_duration_s=max_duration_s)
    parts: list[tuple[float, RecordingReader]] = []
    for index, (path, start_s) in enumerate(segments):
        data = first if index == 0 else read_object(path)
        if data is None:
            raise RecordingUnusable(f"recording segment {index} of {len(segments)} is missing from the bucket")
        if max_bytes is not None and len(data) > max_bytes:
            raise RecordingUnusable(f"recording segment {index} is over {max_bytes / 2**20:.0f} MiB: not transcribed")
        try:
            parts.append((start_s, RecordingReader(data, max_duration_s=max_duration_s)))
        except RecordingUnusable as exc:
            raise RecordingUnusable(f"recording segment {index}: {exc}") from None
    return SegmentedRecordingReader(parts, max_duration_s=max_duration_s)
