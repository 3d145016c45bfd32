"""Which audio is whose: one track per speaker from the recording, whatever Egress wrote.

Egress is asked for DUAL_CHANNEL_AGENT (agent on one channel, caller on the other), but
without ``enable_room_composite_sdk_source`` it records audio-only room composites through
Chrome and ignores the option: both channels carry the same mix (livekit/egress#1121,
livekit/agents#4462). livekit/egress#1199 saw the caller on the left and the agent on the
right. So the channels are checked against the session report's turn times before anyone's
words are attributed:

- two different channels: each is one speaker; the one whose speech follows the agent's turn
  times is the agent's (``dual_channel``, or ``dual_channel_swapped`` when that is not the
  channel the report names);
- one channel, or two carrying the same audio: the mix is cut by the live transcript's turn
  times into one track per speaker (``mixed_split_by_report``), unless the report has no turn
  times or they do not match the recording's speech (``mono_fallback``: no track, the live
  transcript serves).

Reasons hold measured figures only, never words of the call: they go into Dagster metadata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from callcenter.record import ChannelMode
from callcenter.report import Speaker, Turn
from orchestration.defs.postcall.audio import STT_RATE, RecordingUnusable

__all__ = ["ChannelMode", "ChannelSummarizer", "SpeakerPlan", "SpeakerTracks", "plan_speakers", "separate_speakers"]

ENVELOPE_FRAME_S = 0.05
# Speech energy is scored between these levels (dBFS): below is silence or line noise.
_FLOOR_DBFS, _CEILING_DBFS = -55.0, -25.0
# Two channels are one mix when their samples, or their energy over time, are this alike.
# Separated speakers correlate near 0 (they take turns); Opus coding of one mix twice stays above 0.99.
SAME_AUDIO_SAMPLE_CORRELATION = 0.9
SAME_AUDIO_ENVELOPE_CORRELATION = 0.97
# How much better one channel assignment must fit the agent's turn times than the other to be believed.
ORIENTATION_MARGIN = 0.2
# A mix is split by the turn times only when its speech follows them at least this closely.
TURNS_MATCH_MIN_CORRELATION = 0.3
# Turn times come from the live STT and the agent's playout: widen each turn a little, but never
# into the other speaker's turn.
SPLIT_PAD_S = 0.2
# The agent counts turn times from when it asked Egress to record; Egress starts writing once its
# pipeline (for the web source, Chrome) is up, seconds later. Offsets up to this are searched for.
MAX_TURN_OFFSET_S = 8.0
# An offset is taken only when it fits the speech this much better than none (periodic turn-taking
# gives small spurious peaks).
OFFSET_MIN_GAIN = 0.05


@dataclass
class SpeakerTracks:
    mode: ChannelMode
    reason: str
    tracks: dict[Speaker, np.ndarray] = field(default_factory=dict)  # float32 at STT_RATE, recording times
    stats: dict[str, float] = field(default_factory=dict)


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 where either side is constant (a silent channel, a speaker with no turns)."""
    n = min(len(a), len(b))
    if n < 2:
        return 0.0
    a, b = a[:n].astype(np.float64), b[:n].astype(np.float64)
    a, b = a - a.mean(), b - b.mean()
    denom = np.sqrt(np.dot(a, a) * np.dot(b, b))
    return float(np.dot(a, b) / denom) if denom > 1e-12 else 0.0


def speech_envelope(samples: np.ndarray, rate: int = STT_RATE) -> np.ndarray:
    """Speech energy per 50 ms frame, 0 (silence) to 1 (clear speech)."""
    frame = int(rate * ENVELOPE_FRAME_S)
    n = len(samples) // frame
    if n == 0:
        return np.zeros(0)
    frames = samples[: n * frame].astype(np.float64).reshape(n, frame)
    dbfs = 10 * np.log10(np.maximum(np.mean(frames**2, axis=1), 1e-12))
    return np.clip((dbfs - _FLOOR_DBFS) / (_CEILING_DBFS - _FLOOR_DBFS), 0.0, 1.0)


def turn_activity(
    turns: Sequence[Turn], speaker: Speaker | None, n_frames: int, pad_s: float = 0.0, offset_s: float = 0.0
) -> np.ndarray:
    """True for the 50 ms frames inside ``speaker``'s turns (anyone's for None), widened by ``pad_s``
    and moved by ``offset_s`` onto the recording's clock."""
    active = np.zeros(n_frames, dtype=bool)
    for turn in turns:
        if speaker is None or turn.speaker is speaker:
            a = max(int(round((turn.start + offset_s - pad_s) / ENVELOPE_FRAME_S)), 0)
            b = min(int(round((turn.end + offset_s + pad_s) / ENVELOPE_FRAME_S)), n_frames)
            if b > a:  # a turn wholly before frame 0 (a negative offset, a later block) marks nothing
                active[a:b] = True
    return active


def turn_offset(envelope: np.ndarray, turns: Sequence[Turn]) -> tuple[float, float]:
    """Seconds to add to the report's turn times so they fit the recording's speech, and that fit
    (correlation of the speech envelope with anyone's turns)."""
    n = len(envelope)
    k = int(MAX_TURN_OFFSET_S / ENVELOPE_FRAME_S)
    # Turns placed k frames late on a grid k frames longer each side: frame i at shift s is base[i - s + k].
    base = turn_activity(turns, None, n + 2 * k, offset_s=k * ENVELOPE_FRAME_S).astype(np.float64)
    fits = {shift: _correlation(envelope, base[k - shift : k - shift + n]) for shift in range(-k, k + 1)}
    # The fit is flat across a few frames where turn edges and speech edges differ by a frame or two;
    # float noise must not pick the plateau's edge, so take its middle frame.
    top = max(fits.values())
    plateau = sorted(shift for shift, fit in fits.items() if fit >= top - 1e-6)
    best = plateau[len(plateau) // 2]
    if fits[best] < fits[0] + OFFSET_MIN_GAIN:
        best = 0
    return round(best * ENVELOPE_FRAME_S, 3), fits[best]


@dataclass
class ChannelSummary:
    """What attributing speakers needs from the whole recording, gathered one block at a time."""

    envelopes: list[np.ndarray]  # speech energy per 50 ms frame, per channel
    mix_envelope: np.ndarray | None = None  # of the mean of channels 0 and 1 (stereo only)
    sample_correlation: float | None = None  # of channels 0 and 1 (stereo only)


class ChannelSummarizer:
    """Feed ``(start, block)`` pairs in order (blocks a multiple of 50 ms but the last); then ``summary()``."""

    def __init__(self) -> None:
        self._envelopes: list[list[np.ndarray]] = []
        self._mix: list[np.ndarray] = []
        self._sums = np.zeros(6)  # n, sum a, sum b, sum a^2, sum b^2, sum ab (channels 0 and 1)

    def add(self, block: np.ndarray) -> None:
        if not self._envelopes:
            self._envelopes = [[] for _ in range(block.shape[1])]
        for i in range(block.shape[1]):
            self._envelopes[i].append(speech_envelope(block[:, i]))
        if block.shape[1] == 2:
            a, b = block[:, 0].astype(np.float64), block[:, 1].astype(np.float64)
            self._sums += (len(a), a.sum(), b.sum(), np.dot(a, a), np.dot(b, b), np.dot(a, b))
            self._mix.append(speech_envelope(((a + b) / 2).astype(np.float32)))

    def summary(self) -> ChannelSummary:
        envelopes = [np.concatenate(e) if e else np.zeros(0) for e in self._envelopes] or [np.zeros(0)]
        if len(envelopes) != 2:
            return ChannelSummary(envelopes)
        n, sa, sb, saa, sbb, sab = self._sums
        denom = np.sqrt(max(n * saa - sa * sa, 0.0) * max(n * sbb - sb * sb, 0.0))
        correlation = float((n * sab - sa * sb) / denom) if n >= 2 and denom > 1e-12 else 0.0
        return ChannelSummary(envelopes, np.concatenate(self._mix), correlation)


def summarize(channels: Sequence[np.ndarray]) -> ChannelSummary:
    n = min(len(c) for c in channels)
    summarizer = ChannelSummarizer()
    summarizer.add(np.stack([c[:n] for c in channels], axis=1))
    return summarizer.summary()


@dataclass
class SpeakerPlan:
    """How to build each speaker's track from the recording's channels, block by block."""

    mode: ChannelMode
    reason: str
    sources: dict[Speaker, tuple[int, ...]] = field(default_factory=dict)  # channels averaged into the track
    split_turns: Sequence[Turn] | None = None  # the mix is cut by these turns (mixed_split_by_report)
    offset_s: float = 0.0
    stats: dict[str, float] = field(default_factory=dict)

    def track(self, speaker: Speaker, block: np.ndarray, start: int) -> np.ndarray:
        """``speaker``'s audio in ``block`` (samples ``start`` onward of the recording)."""
        channels = self.sources[speaker]
        audio = block[:, channels[0]] if len(channels) == 1 else block[:, list(channels)].mean(axis=1)
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        if self.split_turns is None:
            return audio
        mask = _speaker_mask(self.split_turns, speaker, len(audio), self.offset_s - start / STT_RATE)
        return np.where(mask, audio, 0.0).astype(np.float32)


def _speaker_mask(turns: Sequence[Turn], speaker: Speaker, n_samples: int, offset_s: float) -> np.ndarray:
    """Samples to keep for ``speaker``: its padded turns, less the other speaker's own turns."""
    n_frames = -(-n_samples // int(STT_RATE * ENVELOPE_FRAME_S))
    own = turn_activity(turns, speaker, n_frames, offset_s=offset_s)
    other = Speaker.CALLER if speaker is Speaker.AGENT else Speaker.AGENT
    theirs = turn_activity(turns, other, n_frames, offset_s=offset_s)
    keep = turn_activity(turns, speaker, n_frames, SPLIT_PAD_S, offset_s) & ~(theirs & ~own)
    return np.repeat(keep, int(STT_RATE * ENVELOPE_FRAME_S))[:n_samples]


def _moved(offset_s: float) -> str:
    return f"; turn times moved {offset_s:+.2f} s onto the recording's clock" if offset_s else ""


def _split_mix(
    mix_envelope: np.ndarray, channels: tuple[int, ...], turns: Sequence[Turn], why_mixed: str, stats: dict[str, float]
) -> SpeakerPlan:
    if not turns:
        return SpeakerPlan(
            ChannelMode.MONO_FALLBACK, f"{why_mixed}; the session report has no turn times to split it by", stats=stats
        )
    offset_s, match = turn_offset(mix_envelope, turns)
    stats["turns_match_correlation"] = round(match, 3)
    if match < TURNS_MATCH_MIN_CORRELATION:
        return SpeakerPlan(
            ChannelMode.MONO_FALLBACK,
            f"{why_mixed}; the session report's turn times do not match the recording's speech "
            f"(correlation {match:.2f} < {TURNS_MATCH_MIN_CORRELATION}, offsets up to {MAX_TURN_OFFSET_S:.0f} s tried)",
            stats=stats,
        )
    stats["turn_offset_s"] = offset_s
    return SpeakerPlan(
        ChannelMode.MIXED_SPLIT_BY_REPORT,
        f"{why_mixed}; split by the session report's turn times (correlation {match:.2f}){_moved(offset_s)}",
        {Speaker.AGENT: channels, Speaker.CALLER: channels},
        turns,
        offset_s,
        stats,
    )


def plan_speakers(summary: ChannelSummary, turns: Sequence[Turn], recording_channels: dict[str, int]) -> SpeakerPlan:
    """Which channels hold whom, checked against the report's turn times (``recording_channels``:
    the session report's map of speaker -> channel index)."""
    channels = summary.envelopes
    agent_ch = recording_channels.get(Speaker.AGENT.value, 0)
    caller_ch = recording_channels.get(Speaker.CALLER.value, 1)
    if len(channels) == 1:
        return _split_mix(channels[0], (0,), turns, "recording has one channel", {})
    for index in (agent_ch, caller_ch):
        if not 0 <= index < len(channels):
            raise RecordingUnusable(
                f"recording has {len(channels)} channel(s); the session report maps a speaker to channel {index}"
            )
    if agent_ch == caller_ch:
        return _split_mix(
            channels[agent_ch], (agent_ch,), turns, f"the session report maps both speakers to channel {agent_ch}", {}
        )

    envelopes = channels[agent_ch], channels[caller_ch]
    stats = {
        "channel_correlation": round(summary.sample_correlation or 0.0, 4),
        "envelope_correlation": round(_correlation(*envelopes), 4),
    }
    if (
        stats["channel_correlation"] >= SAME_AUDIO_SAMPLE_CORRELATION
        or stats["envelope_correlation"] >= SAME_AUDIO_ENVELOPE_CORRELATION
    ):
        why = (
            f"both channels carry the same audio (sample correlation {stats['channel_correlation']:.2f}, "
            f"energy correlation {stats['envelope_correlation']:.2f}): Egress mixed the room"
        )
        return _split_mix(summary.mix_envelope, (0, 1), turns, why, stats)

    as_mapped = {Speaker.AGENT: (agent_ch,), Speaker.CALLER: (caller_ch,)}
    if not any(t.speaker is Speaker.AGENT for t in turns):
        return SpeakerPlan(
            ChannelMode.DUAL_CHANNEL,
            "two separate channels; no turn times of the agent to check them by: the session report's mapping kept",
            as_mapped,
            stats=stats,
        )
    n = min(len(e) for e in envelopes)
    offset_s, _ = turn_offset(np.maximum(envelopes[0][:n], envelopes[1][:n]), turns)
    stats["turn_offset_s"] = offset_s
    said = {
        s: turn_activity(turns, s, n, offset_s=offset_s).astype(np.float64) for s in (Speaker.AGENT, Speaker.CALLER)
    }
    # How much better the report's mapping fits the turn times than the other way round.
    score = (
        _correlation(envelopes[0], said[Speaker.AGENT])
        - _correlation(envelopes[0], said[Speaker.CALLER])
        + _correlation(envelopes[1], said[Speaker.CALLER])
        - _correlation(envelopes[1], said[Speaker.AGENT])
    ) / 2
    stats["orientation_score"] = round(score, 3)
    if score <= -ORIENTATION_MARGIN:
        return SpeakerPlan(
            ChannelMode.DUAL_CHANNEL_SWAPPED,
            f"the agent's turn times follow channel {caller_ch}, not channel {agent_ch} as the session report maps it "
            f"(score {score:.2f}{_moved(offset_s)}): channels swapped",
            {Speaker.AGENT: (caller_ch,), Speaker.CALLER: (agent_ch,)},
            stats=stats,
        )
    if score >= ORIENTATION_MARGIN:
        reason = f"two separate channels, as the session report maps them (score {score:.2f}{_moved(offset_s)})"
    else:
        reason = (
            f"two separate channels; the turn times do not tell them apart (score {score:.2f}): "
            "the session report's mapping kept"
        )
    return SpeakerPlan(ChannelMode.DUAL_CHANNEL, reason, as_mapped, stats=stats)


def separate_speakers(
    channels: Sequence[np.ndarray], turns: Sequence[Turn], recording_channels: dict[str, int]
) -> SpeakerTracks:
    """One track per speaker from whole decoded channels (the pipeline plans once, then builds tracks per block)."""
    plan = plan_speakers(summarize(channels), turns, recording_channels)
    tracks = {}
    for speaker, sources in plan.sources.items():
        if len(sources) == 1 and plan.split_turns is None:
            tracks[speaker] = channels[sources[0]]
        else:
            n = min(len(channels[i]) for i in sources)
            tracks[speaker] = plan.track(speaker, np.stack([c[:n] for c in channels], axis=1), 0)
    return SpeakerTracks(plan.mode, plan.reason, tracks, plan.stats)
