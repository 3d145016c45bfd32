"""What the agent knows about the call in progress (the AgentSession's userdata)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from agent.call_control import CallControl
from agent.personas import Persona
from callcenter.dispatch import OutboundCallRequest
from callcenter.do_not_call import HeardBy
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.report import TransferStep, TransferStepName


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class CallState:
    call_id: str
    direction: CallDirection
    persona: Persona
    control: CallControl
    started_at: datetime = field(default_factory=utcnow)
    request: OutboundCallRequest | None = None
    transfer_to: str | None = None  # tel:/sip: URI of the human queue, None = no transfer
    from_number: str | None = None
    to_number: str | None = None
    answered_at: datetime | None = None
    sip_status_code: int | None = None
    # set by tools and the dial flow; None at the end means an answered call that ran its course
    outcome: CallOutcome | None = None
    automated_agent_disclosed: bool = False
    recording_disclosed: bool = False
    do_not_call_requested: bool = False
    transferred_to: str | None = None
    recording_path: str | None = None
    recording_started_at: datetime | None = None
    egress_id: str | None = None
    agent_error: str | None = None  # a service failed mid-call and the agent ended it (agent/stt_failure.py)
    recording: Any = None  # agent.recording.CallRecording: the recording's segments
    payment: Any = None  # agent.payment.PaymentStep, where the persona takes payments
    # Writes the do-not-call request to the bucket at once (agent/worker.py wires it); the report
    # at the end of the call may never come (a crash, a failed upload).
    on_do_not_call: Callable[[HeardBy], None] | None = None
    transfer_steps: list[TransferStep] = field(default_factory=list)  # a warm transfer (agent/warm_transfer.py)
    callback_requested: datetime | Literal["asap"] | None = None

    def transfer_step(self, step: TransferStepName, detail: str | None = None, *, once: bool = False) -> None:
        if once and any(s.step is step for s in self.transfer_steps):
            return
        self.transfer_steps.append(TransferStep(step=step, at=utcnow(), detail=detail))

    def hear_do_not_call(self, heard_by: HeardBy) -> None:
        """The caller asked not to be called again: remember it and write it down, once."""
        first = not self.do_not_call_requested
        self.do_not_call_requested = True
        if first and self.on_do_not_call is not None:
            self.on_do_not_call(heard_by)

    @property
    def speaks_recording_notice(self) -> bool:
        if self.persona.recording_disclosure is None:
            return False
        return self.request.recording_disclosure if self.request is not None else True

    def final_outcome(self) -> CallOutcome:
        if self.outcome is not None:
            return self.outcome
        return CallOutcome.ANSWERED if self.answered_at is not None else CallOutcome.FAILED
