"""One call's transcription stage: report + recording -> redacted, speaker-labelled transcript.

A problem with one call (missing, empty, truncated or wrong-codec recording, unreadable
report) is recorded on that call with a reason; it never raises out of ``transcribe_call``
so the other calls of the batch go on.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import ValidationError

from callcenter.dispatch import MAX_CALL_DURATION_S
from callcenter.record import TranscriptSegment, TranscriptSource
from callcenter.redaction import RedactionPolicy, redact_conversation
from callcenter.report import SessionReport, Speaker, parse_report
from orchestration.defs.postcall.audio import (
    STT_RATE,
    RecordingReader,
    RecordingUnusable,
    open_recording,
    speech_fraction,
)
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.channels import ChannelMode, ChannelSummarizer, plan_speakers
from orchestration.defs.postcall.ordering import SpeakerOrder, align_to_turns, speaker_order
from orchestration.defs.postcall.speech import ChunkedTranscription, SpeechToText

log = logging.getLogger(__name__)

# The recording transcript is preferred; the live one wins when the recording's holds less
# than this share of the live transcript's words (truncated recording, dead channel).
RECORDING_MIN_WORD_SHARE = 0.6
DURATION_TOLERANCE_S = 2.0
DURATION_TOLERANCE_SHARE = 0.05
STT_CHUNK_S = 120.0  # longest stretch of one speaker's track handed to STT at once (Riva: speech.py's limit)
# No recording is transcribed past the longest call (plus Egress finishing after the hang-up), nor
# read past what Opus' highest bitrate (510 kb/s, under 64 kB/s) makes of that, plus Ogg framing:
# one oversized or runaway recording fails its own call, not the batch's time or memory.
EGRESS_TAIL_S = 120
MAX_RECORDING_S = float(MAX_CALL_DURATION_S + EGRESS_TAIL_S)
OPUS_MAX_BYTES_PER_S = 64_000
MAX_RECORDING_BYTES = int(MAX_RECORDING_S * OPUS_MAX_BYTES_PER_S) + 2**20
SPEECH_FRAME_SAMPLES = int(0.03 * STT_RATE)  # speech_fraction's frame


class ReportGone(Exception):
    """The session report a stored transcription came from can no longer be read."""


@dataclass
class TranscribedCall:
    ref: CallRef
    report: SessionReport | None = None
    failure: str | None = None  # set when the call could not be transcribed at all
    recording_object: str | None = None
    recording_bytes: int | None = None  # None: no recording object
    recording_duration_s: float | None = None
    recording_problem: str | None = None  # the recording was unusable (the live transcript may still serve)
    # where the recording was stopped for a payment step (seconds on the call's clock): nothing was recorded
    recording_paused: list[tuple[float, float]] = field(default_factory=list)
    channel_speech: dict[str, float] = field(default_factory=dict)  # per speaker's track
    channel_mode: ChannelMode | None = None  # how the recording's audio was attributed; None: not decoded
    channel_reason: str | None = None  # why that mode (measured figures only, no words of the call)
    channel_stats: dict[str, float] = field(default_factory=dict)
    recording_transcript: list[TranscriptSegment] = field(default_factory=list)
    live_transcript: list[TranscriptSegment] = field(default_factory=list)
    chosen: TranscriptSource | None = None
    speaker_order: SpeakerOrder | None = None  # the recording transcript's order against the live turns
    redactions: int = 0
    stt_seconds: float = 0.0
    seconds: float = 0.0  # the whole stage for this call: reads, decoding, STT, redaction

    report_stripped: bool = False  # the report's raw parts were left out for storage (for_storage)

    @property
    def call_id(self) -> str:
        return self.ref.call_id

    def for_storage(self) -> TranscribedCall:
        """What the IO manager may keep between steps (GCS on GKE): no phone numbers and no raw
        words. The report keeps its facts but not ``from_number``/``to_number`` nor its turns (the
        live transcript is kept redacted beside it); ``with_report`` reads them back for indexing."""
        if self.report is None or self.report_stripped:
            return self
        report = self.report.model_copy(update={"from_number": None, "to_number": None, "turns": []})
        return dataclasses.replace(self, report=report, report_stripped=True)

    def with_report(self, read_object: Callable[[str], bytes | None]) -> TranscribedCall:
        """The whole session report again, read from the bucket (the call's own report object)."""
        if not self.report_stripped:
            return self
        raw = read_object(self.ref.report_object)
        if raw is None:
            raise ReportGone(f"session report of {self.call_id} is gone from the bucket since transcription")
        report = parse_report(raw)
        if report.call_id != self.call_id:
            raise ReportGone(f"session report at {self.ref.report_object} now names another call")
        return dataclasses.replace(self, report=report, report_stripped=False)

    @property
    def transcript(self) -> list[TranscriptSegment]:
        if self.chosen is TranscriptSource.LIVE:
            return self.live_transcript
        if self.chosen is TranscriptSource.RECORDING:
            return self.recording_transcript
        return []

    @property
    def alternate_transcript(self) -> list[TranscriptSegment]:
        if self.chosen is TranscriptSource.LIVE:
            return self.recording_transcript
        if self.chosen is TranscriptSource.RECORDING:
            return self.live_transcript
        return []

    @property
    def expects_recording(self) -> bool:
        """Only answered calls have a conversation to record."""
        return self.report is not None and self.report.answered_at is not None

    @property
    def expected_duration_s(self) -> float | None:
        """Recording length implied by the SIP timestamps (answer to hang-up)."""
        if self.report is None or self.report.answered_at is None:
            return None
        return (self.report.ended_at - self.report.answered_at).total_seconds()

    @property
    def duration_mismatch(self) -> str | None:
        expected, actual = self.expected_duration_s, self.recording_duration_s
        if expected is None or actual is None:
            return None
        tolerance = max(DURATION_TOLERANCE_S, DURATION_TOLERANCE_SHARE * expected)
        if abs(expected - actual) > tolerance:
            return f"recording is {actual:.1f} s but the call lasted {expected:.1f} s (answer to hang-up)"
        return None


REASON_MAX_ERRORS = 5


def validation_reason(exc: ValidationError) -> str:
    """Each error's type and location (``literal_error at schema_version``), never its input or message:
    a report holds phone numbers and the caller's words, and messages can quote them (``got '+1555…'``)."""
    parts = []
    for error in exc.errors(include_url=False, include_input=False, include_context=False)[:REASON_MAX_ERRORS]:
        loc = ".".join(str(p) for p in error["loc"])
        parts.append(f"{error['type']} at {loc}" if loc else error["type"])
    more = exc.error_count() - len(parts)
    return "; ".join(parts) + (f" (+{more} more)" if more > 0 else "")


def _words(segments: list[TranscriptSegment]) -> int:
    return sum(len(s.text.split()) for s in segments)


def _redacted_segments(
    items: list[tuple[Speaker, float, float, str]], policy: RedactionPolicy
) -> tuple[list[TranscriptSegment], int]:
    ordered = sorted(items, key=lambda i: (i[1], i[0].value))
    # As one conversation: a number split across two segments, or a code answering the other
    # speaker's question, is redacted as it would be within one segment.
    result = redact_conversation([(speaker.value, text) for speaker, _, _, text in ordered], policy)
    out = [
        TranscriptSegment(speaker=speaker, text=text, start=max(start, 0.0), end=max(end, start, 0.0))
        for (speaker, start, end, _), text in zip(ordered, result.texts, strict=True)
    ]
    return out, result.count


def _transcribe_recording(
    call: TranscribedCall, reader: RecordingReader, report: SessionReport, stt: SpeechToText
) -> list[tuple[Speaker, float, float, str]]:
    """Two passes over the recording, a block at a time: memory stays flat however long the call
    (and no longer than ``MAX_RECORDING_S``: ``RecordingTooLong``).

    The first measures each channel's speech over the whole call, which attribution needs; the
    second builds each speaker's track block by block and hands it to STT in chunks.
    """
    summarizer, samples = ChannelSummarizer(), 0
    for _, block in reader.blocks():
        summarizer.add(block)
        samples += len(block)
    if not samples:
        raise RecordingUnusable(reader.decode_error or "recording decodes to no audio")
    call.recording_duration_s = round(samples / STT_RATE, 3)
    if reader.decode_error:
        call.recording_problem = reader.decode_error
    # Egress may have written the room's mix on both channels, or the speakers the other way
    # round: attribute by what the audio holds, not only by what was asked of Egress.
    plan = plan_speakers(summarizer.summary(), report.turns, report.recording_channels)
    call.channel_mode, call.channel_reason, call.channel_stats = plan.mode, plan.reason, plan.stats
    if not plan.sources:
        return []
    started = time.perf_counter()
    # what one STT request can carry (Riva: gRPC's message limit, speech.py)
    chunk_s = min(STT_CHUNK_S, getattr(stt, "max_chunk_s", STT_CHUNK_S))
    chunks = {speaker: ChunkedTranscription(stt, chunk_s) for speaker in plan.sources}
    speech_frames = dict.fromkeys(plan.sources, 0.0)
    for start, block in reader.blocks():
        for speaker, chunked in chunks.items():
            track = plan.track(speaker, block, start)
            speech_frames[speaker] += speech_fraction(track) * (len(track) // SPEECH_FRAME_SAMPLES)
            chunked.add(track)
    items = [(speaker, s.start, s.end, s.text) for speaker, chunked in chunks.items() for s in chunked.finish()]
    call.stt_seconds = time.perf_counter() - started
    frames = max(samples // SPEECH_FRAME_SAMPLES, 1)
    call.channel_speech = {speaker.value: round(n / frames, 4) for speaker, n in speech_frames.items()}
    return items


def transcribe_call(
    ref: CallRef,
    read_object: Callable[[str], bytes | None],
    stt: SpeechToText,
    policy: RedactionPolicy,
    write_raw: Callable[[str, bytes], None] | None = None,
) -> TranscribedCall:
    """``read_object`` returns an object's bytes, or None when it does not exist."""
    started = time.perf_counter()
    call = _transcribe_call(ref, read_object, stt, policy, write_raw)
    call.seconds = time.perf_counter() - started
    return call


def _transcribe_call(
    ref: CallRef,
    read_object: Callable[[str], bytes | None],
    stt: SpeechToText,
    policy: RedactionPolicy,
    write_raw: Callable[[str, bytes], None] | None,
) -> TranscribedCall:
    call = TranscribedCall(ref=ref)
    try:
        raw_report = read_object(ref.report_object)
        if raw_report is None:
            call.failure = "session report disappeared from the bucket"
            return call
        call.report = parse_report(raw_report)
    except ValidationError as exc:
        call.failure = f"session report is not a valid SessionReport: {validation_reason(exc)}"
        return call
    report = call.report
    if report.call_id != ref.call_id:
        call.failure = f"session report names call {report.call_id}, but it is stored under {ref.call_id}"
        # Not indexed under either id: the row of the call it names must not be overwritten.
        call.report = None
        return call

    live_items = [(t.speaker, t.start, t.end, t.text) for t in report.turns]
    call.live_transcript, live_redactions = _redacted_segments(live_items, policy)

    recording_redactions = 0
    raw_items: list[tuple[Speaker, float, float, str]] = []
    call.recording_object = report.recording_path or ref.audio_object
    audio = read_object(call.recording_object)
    if audio is None:
        call.recording_problem = "recording missing from the bucket" if call.expects_recording else None
    elif len(audio) > MAX_RECORDING_BYTES:  # the reader stops one byte past the limit
        call.recording_bytes = len(audio)
        call.recording_problem = (
            f"recording is over {MAX_RECORDING_BYTES / 2**20:.0f} MiB, more than a {MAX_RECORDING_S / 60:.0f}-minute "
            "call can take: not transcribed"
        )
    else:
        call.recording_bytes = len(audio)
        try:
            # a recording paused for a payment step is several files, joined on the call's clock
            segments = [(seg.path, seg.start) for seg in report.recording_segments]
            reader = open_recording(
                audio, segments, read_object, max_duration_s=MAX_RECORDING_S, max_bytes=MAX_RECORDING_BYTES
            )
            raw_items = _transcribe_recording(call, reader, report, stt)
            call.recording_paused = list(getattr(reader, "paused_spans", []))
        except RecordingUnusable as exc:  # RecordingTooLong included
            call.recording_problem = str(exc)
        # Merged by start time, a segment that starts before its words would stand before the question it answers.
        offset_s = call.channel_stats.get("turn_offset_s", 0.0)
        raw_items = align_to_turns(raw_items, report.turns, offset_s)
        if raw_items and report.turns:
            call.speaker_order = speaker_order([(s, a, b) for s, a, b, _ in raw_items], report.turns, offset_s)
        call.recording_transcript, recording_redactions = _redacted_segments(raw_items, policy)
    if write_raw is not None and raw_items:
        raw = [
            {"speaker": s.value, "start": a, "end": b, "text": t}
            for s, a, b, t in sorted(raw_items, key=lambda i: i[1])
        ]
        write_raw(ref.report_object.removesuffix("session.json") + "transcript.raw.json", json.dumps(raw).encode())

    rec_words, live_words = _words(call.recording_transcript), _words(call.live_transcript)
    if rec_words and rec_words >= RECORDING_MIN_WORD_SHARE * live_words:
        call.chosen = TranscriptSource.RECORDING
        call.redactions = recording_redactions
    elif live_words:
        call.chosen = TranscriptSource.LIVE
        call.redactions = live_redactions
    if call.recording_problem and call.chosen is None:
        call.failure = call.recording_problem
    elif call.channel_mode is ChannelMode.MONO_FALLBACK and call.chosen is None:
        call.failure = f"recording not attributable to speakers: {call.channel_reason}"
    log.info(
        "transcribed %s (%s): %s words from the recording, %s live, using %s",
        ref.call_id,
        call.channel_mode.value if call.channel_mode else "no recording",
        rec_words,
        live_words,
        call.chosen.value if call.chosen else "none",
    )
    return call
