"""The caller's side of a recorded call, cut into what the caller said turn by turn.

The recording is stereo (``SessionReport.recording_channels`` names the caller's channel) and the
report's turn times are seconds from its start, so each caller turn is the caller's channel
between its start and end. Caller turns with no agent turn between them are one utterance (the
caller paused mid-thought): played as recorded, silence included, so the agent hears the same
pause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from callcenter.report import SessionReport, Speaker
from orchestration.defs.postcall.audio import STT_RATE, RecordingUnusable, open_recording
from orchestration.defs.postcall.transcription import MAX_RECORDING_BYTES, MAX_RECORDING_S

LEAD_S = 0.15  # a word's onset starts before the live STT's timestamp
TAIL_S = 0.25
# the wait after the agent stops before the caller speaks: the original gap, within reason
MIN_GAP_S, MAX_GAP_S, DEFAULT_GAP_S = 0.6, 3.0, 1.0


@dataclass(frozen=True)
class CallerAudio:
    pcm: np.ndarray  # the caller's channel, float32 at 16 kHz, on the turns' clock
    paused_spans: list[tuple[float, float]]  # where the recording was stopped (a payment step): no audio


@dataclass(frozen=True)
class CallerTurn:
    pcm: np.ndarray  # int16 mono at 16 kHz, what the phone line speaks
    start_s: float  # in the original recording
    end_s: float
    gap_s: float  # how long after the agent last spoke the caller began, in the original


def caller_channel(report: SessionReport, read_object: Callable[[str], bytes | None]) -> CallerAudio:
    """The caller's channel of the call's recording (its segments joined on the call's clock, as
    post-call joins them), float32 at 16 kHz; RecordingUnusable when there is none to take. Reads
    are bounded as post-call's are: a recording longer than any call fails its own call."""
    if not report.recording_path:
        raise RecordingUnusable("the call has no recording to replay")
    first = read_object(report.recording_path)
    if first is None:
        raise RecordingUnusable("recording missing from the bucket")
    if len(first) > MAX_RECORDING_BYTES:
        raise RecordingUnusable(f"recording is over {MAX_RECORDING_BYTES / 2**20:.0f} MiB, longer than a call can be")
    segments = [(seg.path, seg.start) for seg in report.recording_segments]
    reader = open_recording(first, segments, read_object, max_duration_s=MAX_RECORDING_S, max_bytes=MAX_RECORDING_BYTES)
    if reader.n_channels < 2:
        raise RecordingUnusable("recording is mono: the caller's side cannot be separated from the agent's")
    index = report.recording_channels.get(Speaker.CALLER.value, 1)
    if index >= reader.n_channels:
        raise RecordingUnusable(f"the report puts the caller on channel {index}; the recording has {reader.n_channels}")
    # one channel kept, block by block: a long call's stereo PCM is never held whole
    blocks = [np.ascontiguousarray(block[:, index]) for _, block in reader.blocks()]
    if not blocks:
        raise RecordingUnusable(reader.decode_error or "recording decodes to no audio")
    return CallerAudio(np.concatenate(blocks), list(getattr(reader, "paused_spans", [])))


def split_caller_turns(report: SessionReport, audio: CallerAudio, rate: int = STT_RATE) -> list[CallerTurn]:
    """Each run of caller turns (between agent turns) cut from the caller's channel. A caller turn
    spoken while the recording was stopped (card details in a payment step) has no audio and is
    left out: those words were kept out of the recording on purpose."""
    caller = audio.pcm
    runs: list[list] = []
    last_agent_end: float | None = None
    previous = None
    for turn in sorted(report.turns, key=lambda t: t.start):
        if turn.speaker is Speaker.CALLER and any(a <= turn.start and turn.end <= b for a, b in audio.paused_spans):
            continue
        if turn.speaker is Speaker.AGENT:
            last_agent_end = turn.end if last_agent_end is None else max(last_agent_end, turn.end)
        elif previous is Speaker.CALLER and runs:
            runs[-1][1] = max(runs[-1][1], turn.end)
        else:
            gap = DEFAULT_GAP_S if last_agent_end is None else turn.start - last_agent_end
            runs.append([turn.start, turn.end, min(max(gap, MIN_GAP_S), MAX_GAP_S)])
        previous = turn.speaker
    turns = []
    for start, end, gap in runs:
        a, b = max(0, int((start - LEAD_S) * rate)), min(len(caller), int((end + TAIL_S) * rate))
        if b <= a:
            raise RecordingUnusable(
                f"a caller turn at {start:.1f}-{end:.1f} s lies past the recording's end ({len(caller) / rate:.1f} s)"
            )
        pcm = (np.clip(caller[a:b], -1, 1) * 32767).astype(np.int16)
        turns.append(CallerTurn(pcm=pcm, start_s=start, end_s=end, gap_s=round(gap, 2)))
    return turns
