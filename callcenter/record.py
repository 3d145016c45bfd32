"""CallRecord: what the call index stores for one call, and what the analyst browser shows.

Written only by the post-call pipeline (orchestration/defs/postcall), read through
``callindex.CallIndex``. Everything here is already redacted: no raw card numbers, CVVs or
SSNs ever reach a CallRecord. Stable contract: add optional fields only.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from callcenter.report import CallFacts, Turn, TurnLatency

RECORD_VERSION = 1


class TranscriptSource(StrEnum):
    """Where the transcript used for analysis came from."""

    RECORDING = "recording"  # post-call STT over the Egress recording, per channel
    LIVE = "live"  # the agent's live transcript from the session report


class ChannelMode(StrEnum):
    """How the recording's audio was attributed to speakers (Egress does not always record as asked)."""

    DUAL_CHANNEL = "dual_channel"  # one speaker per channel, as the session report maps them
    DUAL_CHANNEL_SWAPPED = "dual_channel_swapped"  # one speaker per channel, the other way round
    MIXED_SPLIT_BY_REPORT = "mixed_split_by_report"  # one mix, cut by the live transcript's turn times
    MONO_FALLBACK = "mono_fallback"  # one mix that could not be split: nothing attributed from the recording


class TranscriptSegment(Turn):
    """One utterance of a transcript, in the same shape as a session report's turn."""


class Sentiment(StrEnum):
    POSITIVE = "positive"
    NEUTRAL = "neutral"
    NEGATIVE = "negative"
    MIXED = "mixed"


# Who wrote an analysis (``CallAnalysis.analyser``): a model, or rules that pick the call's own words.
EXTRACTIVE_ANALYSER = "extractive"


def llm_analyser(model: str) -> str:
    """The label of an analysis the served model ``model`` wrote."""
    return f"llm:{model}"


class CallAnalysis(BaseModel):
    """The structured analysis of one call: the LLM's (its JSON schema constrains the model's
    output), or the extractive analyser's (orchestration/defs/postcall/extractive.py), which fills
    the same fields from the redacted transcript with rules and says so in ``analyser``."""

    model_config = ConfigDict(extra="forbid")

    summary: str = Field(min_length=1, description="two or three sentences: what happened on the call")
    disposition: str = Field(
        min_length=1,
        description="business disposition, snake_case, e.g. sale, callback_requested, not_interested, resolved",
    )
    sentiment: Sentiment = Field(description="the caller's overall sentiment")
    customer_intent: str = Field(min_length=1, description="what the caller wanted, in a few words")
    action_items: list[str] = Field(default_factory=list, description="follow-up tasks for the team")
    follow_up_needed: bool
    goal_achieved: bool | None = Field(None, description="did the call meet the campaign's goal; null if no goal")
    do_not_call_requested: bool | None = Field(
        None, description="did the caller ask, in any words, not to be called again; null when not asked of the model"
    )
    extracted_fields: dict[str, Any] = Field(
        default_factory=dict, description="campaign-specific fields, e.g. appointment_date, plan_name"
    )
    # Set by the code that made the analysis, never by the model (not in the model's schema).
    analyser: str | None = Field(
        None,
        description="who wrote it: 'llm:<served model>', or 'extractive' (the caller's and agent's own redacted "
        "sentences and rules, no model); None in analyses indexed before it was recorded",
    )

    @property
    def is_extractive(self) -> bool:
        return self.analyser == EXTRACTIVE_ANALYSER


class AnalysisStatus(StrEnum):
    OK = "ok"  # analysis validated against CallAnalysis
    FAILED = "failed"  # the model's output stayed invalid after retries; analysis_error says why
    SKIPPED = "skipped"  # nothing to analyse (no speech, recording failed)


class RecordStatus(StrEnum):
    INDEXED = "indexed"  # transcribed (or live transcript used) and indexed
    FAILED = "failed"  # the recording was missing or unusable; failure_reason says why


class LatencySummary(BaseModel):
    """Per-call latency percentiles (ms) from the session report's per-turn metrics."""

    model_config = ConfigDict(extra="forbid")

    turns_measured: int = 0
    voice_to_voice_p50_ms: float | None = None
    voice_to_voice_p95_ms: float | None = None
    llm_ttft_p50_ms: float | None = None
    tts_ttfb_p50_ms: float | None = None
    eou_to_stt_final_p50_ms: float | None = None
    per_turn: list[TurnLatency] = Field(
        default_factory=list,
        description="each measured agent reply's stage timings, as the session report gave them (numbers "
        "only); empty in records indexed before the index kept them: reprocessing the call fills it",
    )


class CallRecord(CallFacts):
    """One indexed call. ``transcript`` is redacted; ``analysis`` is None unless analysis_status is ok."""

    record_version: int = RECORD_VERSION
    duration_s: float = Field(ge=0, description="ended_at - started_at, from the SIP timestamps")

    recording_uri: str | None = Field(None, description="gs://bucket/recordings/.../audio.ogg")
    recording_duration_s: float | None = None
    recording_channel_mode: ChannelMode | None = Field(None, description="None: no recording was decoded")
    recording_channel_reason: str | None = Field(
        None, description="why that mode: measured figures (correlations), never words of the call"
    )

    transcript: list[TranscriptSegment] = Field(default_factory=list)
    transcript_source: TranscriptSource | None = None
    alternate_transcript: list[TranscriptSegment] = Field(
        default_factory=list, description="the other transcript (live vs recording), kept for comparison"
    )

    analysis: CallAnalysis | None = None
    analysis_status: AnalysisStatus = AnalysisStatus.SKIPPED
    analysis_error: str | None = None

    status: RecordStatus = RecordStatus.INDEXED
    failure_reason: str | None = None

    latency: LatencySummary = Field(default_factory=LatencySummary)
    redactions: int = Field(0, ge=0, description="spans redacted from the transcript")
    source_generation: int | None = Field(None, description="GCS generation of the session.json processed")
    processed_at: datetime

    @property
    def transcript_text(self) -> str:
        """The transcript as ``speaker: text`` lines, in time order (what full-text search indexes)."""
        return "\n".join(f"{seg.speaker.value}: {seg.text}" for seg in self.transcript)

    @property
    def sentiment(self) -> Sentiment | None:
        return self.analysis.sentiment if self.analysis else None

    @property
    def disposition(self) -> str | None:
        return self.analysis.disposition if self.analysis else None

    @property
    def follow_up_needed(self) -> bool | None:
        return self.analysis.follow_up_needed if self.analysis else None

    def embedding_text(self) -> str:
        """What the call's embedding is computed from: the analysis summary and the transcript."""
        parts = []
        if self.analysis:
            parts.append(f"{self.analysis.summary} Intent: {self.analysis.customer_intent}.")
        parts.append(self.transcript_text)
        return "\n".join(p for p in parts if p)
