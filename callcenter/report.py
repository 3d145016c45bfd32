"""The agent's session report: one JSON per call, written next to the recording, last.

Its presence in the bucket means the call is complete. Versioned by ``schema_version``;
readers accept every version they know and reject others with a clear error.
"""

from __future__ import annotations

import itertools
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from callcenter.ids import is_call_id
from callcenter.outcomes import CallDirection, CallOutcome

SCHEMA_VERSION = 1


class Speaker(StrEnum):
    AGENT = "agent"
    CALLER = "caller"


class Turn(BaseModel):
    """One utterance; ``start``/``end`` are seconds from the start of the recording."""

    model_config = ConfigDict(extra="forbid")

    speaker: Speaker
    text: str
    start: float = Field(ge=0)
    end: float = Field(ge=0)


class RecordingSegment(BaseModel):
    """One stretch of the call's recording, as its own file: the recording is stopped before a
    payment step asks for card data and a new segment starts once it is taken (Egress cannot
    pause a recording: each stop/start is a new egress and a new file). ``start``/``end`` are
    seconds on the turns' clock (from the start of the first segment); the gaps between
    segments were not recorded."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="bucket object name of this segment's audio")
    start: float = Field(ge=0)
    end: float | None = Field(None, ge=0, description="None: it ran until the call ended")


class TurnLatency(BaseModel):
    """Latency of one agent reply, from the session's metrics events (milliseconds)."""

    model_config = ConfigDict(extra="forbid")

    turn_index: int = Field(ge=0, description="index into turns of the agent reply measured")
    end_of_turn_ms: float | None = Field(
        None, description="end of user speech -> the agent decided the turn was over (VAD silence + turn model)"
    )
    eou_to_stt_final_ms: float | None = None
    llm_ttft_ms: float | None = None
    tts_ttfb_ms: float | None = None
    voice_to_voice_ms: float | None = None


class TransferStepName(StrEnum):
    """The steps of a warm transfer, in the order they can happen (agent/warm_transfer.py)."""

    HOLD_STARTED = "hold_started"  # the caller hears hold audio; the agent stops listening to them
    DIALLED = "dialled"  # the human's number was dialled into the consult room
    ANSWERED = "answered"
    FAILED = "failed"  # detail: why (SIP status, timeout, no SIP service, the human declined)
    BRIEFED = "briefed"  # the agent spoke the call's summary to the human
    CONNECTED = "connected"  # the human was moved into the caller's room
    AGENT_LEFT = "agent_left"
    RETURNED = "returned_to_caller"  # after a failure: the agent speaks to the caller again


class TransferStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    step: TransferStepName
    at: datetime
    detail: str | None = Field(None, description="a reason or status code; never words of the call or a number")


class CallFacts(BaseModel):
    """What is known about a call when it ends: shared by the session report and the index record."""

    model_config = ConfigDict(extra="forbid")

    call_id: str
    direction: CallDirection
    campaign_id: str | None = None
    contact_id: str | None = None
    attempt_id: str | None = None
    from_number: str | None = None
    to_number: str | None = None
    sip_status_code: int | None = None
    started_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime
    outcome: CallOutcome
    agent_name: str | None = None
    persona: str | None = None
    recording_disclosed: bool = False
    automated_agent_disclosed: bool = False
    do_not_call_requested: bool = False
    transferred_to: str | None = None
    recording_path: str | None = Field(None, description="bucket object name of the Egress recording")

    @field_validator("call_id")
    @classmethod
    def _call_id_shape(cls, v: str) -> str:
        if not is_call_id(v):
            raise ValueError(f"call_id must be call-<uuid7>, got {v!r}")
        return v


class SessionReport(CallFacts):
    schema_version: Literal[1] = SCHEMA_VERSION
    room: str
    agent_first_spoke_at: datetime | None = Field(
        None,
        description="when the agent's first words started (absolute time); with answered_at it gives "
        "the silence a person heard after answering (abandonment: more than 2 s)",
    )
    recording_channels: dict[str, int] = Field(
        default_factory=lambda: {"agent": 0, "caller": 1},
        description="channel index of each speaker in the recording",
    )
    recording_segments: list[RecordingSegment] = Field(
        default_factory=list,
        description="the recording's segments in call order when it was paused (a payment step); "
        "empty: one recording, at recording_path",
    )
    turns: list[Turn] = Field(default_factory=list)
    latency: list[TurnLatency] = Field(default_factory=list)
    agent_error: str | None = Field(
        None,
        description="why the agent cut the conversation short itself (e.g. speech recognition failed mid-call, "
        "so it apologised and transferred or hung up): the failing service and error type, no words of the call",
    )
    transfer_steps: list[TransferStep] = Field(
        default_factory=list, description="a warm transfer's steps with their times; empty when none was tried"
    )
    callback_requested: AwareDatetime | Literal["asap"] | None = Field(
        None,
        description="the caller accepted a callback (offered when a transfer found nobody): the time they asked "
        "for, or 'asap'; dialing schedules the contact's next attempt from it",
    )

    @field_validator("recording_segments")
    @classmethod
    def _segments_in_order(cls, v: list[RecordingSegment]) -> list[RecordingSegment]:
        for before, after in itertools.pairwise(v):
            if before.end is None or after.start < before.end:
                raise ValueError("recording segments must be in order, each ended before the next starts")
        for segment in v:
            if segment.end is not None and segment.end < segment.start:
                raise ValueError("a recording segment ends before it starts")
        return v

    def paused_spans(self) -> list[tuple[float, float]]:
        """Where the recording was stopped (seconds on the turns' clock): nothing of these is recorded."""
        segs = self.recording_segments
        return [(a.end, b.start) for a, b in itertools.pairwise(segs) if a.end is not None and b.start > a.end]

    @property
    def duration_s(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()


def parse_report(raw: bytes | str) -> SessionReport:
    return SessionReport.model_validate_json(raw)
