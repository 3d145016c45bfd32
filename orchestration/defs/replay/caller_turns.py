"""The caller's side of a recorded call, cut into what the caller said turn by turn.

The recording is stereo (``SessionReport.recording_channels`` names the caller's channel) and the
report's turn times are seconds from its start, so each caller turn is the caller's channel
between its start and end. Caller turns with no agent turn between them are one utterance (the
caller paused mid-thought): played as recorded, silence included, so the agent hears the same
pause.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from callcenter.report import SessionReport, Speaker
from orchestration.defs.postcall.audio import STT_RATE, RecordingUnusable, decode_recording

LEAD_S = 0.15  # a word's onset starts before the live STT's timestamp
TAIL_S = 0.25
# the wait after the agent stops before the caller speaks: the original gap, within reason
MIN_GAP_S, MAX_GAP_S, DEFAULT_GAP_S = 0.6, 3.0, 1.0


@dataclass(frozen=True)
class CallerTurn:
    pcm: np.ndarray  # int16 mono at 16 kHz, what the phone line speaks
    start_s: float  # in the original recording
    end_s: float
    gap_s: float  # how long after the agent last spoke the caller began, in the original


def caller_channel(report: SessionReport, recording: bytes) -> np.ndarray:
    """The caller's channel, float32 at 16 kHz; RecordingUnusable when there is none to take."""
    decoded = decode_recording(recording)
    if len(decoded.channels) < 2:
        raise RecordingUnusable("recording is mono: the caller's side cannot be separated from the agent's")
    index = report.recording_channels.get(Speaker.CALLER.value, 1)
    if index >= len(decoded.channels):
        raise RecordingUnusable(
            f"the report puts the caller on channel {index}; the recording has {len(decoded.channels)}"
        )
    return decoded.channels[index]


def split_caller_turns(report: SessionReport, caller: np.ndarray, rate: int = STT_RATE) -> list[CallerTurn]:
    """Each run of caller turns (between agent turns) cut from the caller's channel."""
    runs: list[list] = []
    last_agent_end: float | None = None
    previous = None
    for turn in sorted(report.turns, key=lambda t: t.start):
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
