"""Speaker order: recording segments placed where their words were said, checked against the live turns.

Whisper with VAD snaps a segment's start to the end of that channel's previous segment: a reply
can start seconds before its words, and merged by start time it then stands before the
question it answers. Segment times come from word timestamps (``speech.py``); when the session
report also has turn times, a segment never starts earlier than the live turn it belongs to,
moved onto the recording's clock (``align_to_turns``). ``speaker_order`` measures what is left:
how early each turn's first segment starts, and how many replies stand before their prompt.

Figures only, never words: they go into Dagster metadata and the bench.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from callcenter.report import Speaker, Turn

# Live turn times come from the agent's VAD and playout: a segment may start this much before its
# turn and still be taken as said then (a soft onset the live VAD heard late).
ALIGN_SLACK_S = 0.25

Item = tuple[Speaker, float, float, str]


def _matched_turn(speaker: Speaker, start: float, end: float, turns: Sequence[Turn], offset_s: float) -> int | None:
    """Index of ``speaker``'s live turn overlapping [start, end] most (recording clock), if any."""
    best, best_overlap = None, 0.0
    for i, turn in enumerate(turns):
        if turn.speaker is not speaker:
            continue
        overlap = min(end, turn.end + offset_s) - max(start, turn.start + offset_s)
        if overlap > best_overlap:
            best, best_overlap = i, overlap
    return best


def align_to_turns(items: Sequence[Item], turns: Sequence[Turn], offset_s: float = 0.0) -> list[Item]:
    """Each segment starts no earlier than its own live turn (less ``ALIGN_SLACK_S``); unmatched ones keep their times."""
    aligned = []
    for speaker, start, end, text in items:
        index = _matched_turn(speaker, start, end, turns, offset_s)
        if index is not None:
            start = max(start, turns[index].start + offset_s - ALIGN_SLACK_S)
            end = max(end, start)
        aligned.append((speaker, start, end, text))
    return aligned


@dataclass(frozen=True)
class SpeakerOrder:
    segments: int
    matched_turns: int  # live turns with at least one recording segment
    max_early_s: float  # largest lead of a turn's first segment over its live start (0: none early)
    mean_abs_error_s: float  # mean |first segment start - live turn start| over matched turns
    replies_before_prompts: int  # segments placed before a segment of an earlier turn of the other speaker

    @property
    def in_order(self) -> bool:
        return self.replies_before_prompts == 0


def speaker_order(
    segments: Sequence[tuple[Speaker, float, float]], turns: Sequence[Turn], offset_s: float = 0.0
) -> SpeakerOrder:
    """Recording segments (speaker, start, end) as merged for the transcript, against the live turns."""
    ordered = sorted(segments, key=lambda s: (s[1], s[0].value))
    first_start: dict[int, float] = {}
    replies_before_prompts = 0
    latest_turn = {Speaker.AGENT: -1, Speaker.CALLER: -1}  # highest turn index placed so far, per speaker
    for speaker, start, end in ordered:
        index = _matched_turn(speaker, start, end, turns, offset_s)
        if index is None:
            continue
        first_start.setdefault(index, start)
        other = Speaker.CALLER if speaker is Speaker.AGENT else Speaker.AGENT
        if latest_turn[other] > index:
            replies_before_prompts += 1
        latest_turn[speaker] = max(latest_turn[speaker], index)
    errors = [start - (turns[i].start + offset_s) for i, start in first_start.items()]
    return SpeakerOrder(
        segments=len(ordered),
        matched_turns=len(first_start),
        max_early_s=round(max([-e for e in errors] + [0.0]), 3),
        mean_abs_error_s=round(sum(abs(e) for e in errors) / len(errors), 3) if errors else 0.0,
        replies_before_prompts=replies_before_prompts,
    )
