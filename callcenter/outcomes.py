"""The one outcome vocabulary shared by agent, dialing and post-call."""

from __future__ import annotations

from enum import StrEnum


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    VOICEMAIL = "voicemail"
    NO_ANSWER = "no_answer"
    BUSY = "busy"
    FAILED = "failed"
    DECLINED = "declined"
    WRONG_NUMBER = "wrong_number"
    DO_NOT_CALL = "do_not_call"
    TRANSFERRED = "transferred"


class CallDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


# SIP final response codes as LiveKit SIP reports them (TwirpError metadata
# ``sip_status_code``) mapped to outcomes. Anything else unsuccessful is FAILED.
SIP_STATUS_OUTCOMES: dict[int, CallOutcome] = {
    486: CallOutcome.BUSY,
    600: CallOutcome.BUSY,
    480: CallOutcome.NO_ANSWER,
    408: CallOutcome.NO_ANSWER,
    487: CallOutcome.NO_ANSWER,
    404: CallOutcome.WRONG_NUMBER,
    484: CallOutcome.WRONG_NUMBER,
    410: CallOutcome.WRONG_NUMBER,
    603: CallOutcome.DECLINED,
}


def outcome_for_sip_status(code: int | None) -> CallOutcome:
    if code is None:
        return CallOutcome.FAILED
    if 200 <= code < 300:
        return CallOutcome.ANSWERED
    return SIP_STATUS_OUTCOMES.get(code, CallOutcome.FAILED)
