"""Post-call's reading of the whole conversation for a do-not-call request the live call missed:
the shared rules over the caller's words, then the analysis model's reading. What it hears is
written as the agent writes its own (callcenter/do_not_call.py), so dialing suppresses the number
within one tick, and the call's index row says so."""

from __future__ import annotations

from datetime import datetime

from callcenter.bucket import Recordings
from callcenter.do_not_call import DoNotCallRequest, HeardBy, conversation_asks_not_to_be_called
from callcenter.outcomes import CallDirection
from callcenter.paths import do_not_call_path
from orchestration.defs.postcall.records import AnalyzedCall
from orchestration.defs.postcall.transcription import TranscribedCall


def heard_after_the_call(call: TranscribedCall, analysis: AnalyzedCall | None) -> HeardBy | None:
    """How post-call heard a request the agent did not record; None when there is none, or when
    the agent already wrote it down."""
    if call.report is None or call.report.do_not_call_requested:
        return None
    if conversation_asks_not_to_be_called((s.speaker, s.text) for s in call.transcript):
        return HeardBy.POSTCALL_RULES
    if analysis is not None and analysis.analysis is not None and analysis.analysis.do_not_call_requested:
        return HeardBy.POSTCALL_LLM
    return None


def write_request(bucket: Recordings, call: TranscribedCall, heard_by: HeardBy, now: datetime) -> str:
    """The request, next to the call's recording; a request already there (the agent's) stays."""
    report = call.report
    assert report is not None
    name = do_not_call_path(report.call_id)
    if bucket.exists(name):
        return name
    request = DoNotCallRequest(
        call_id=report.call_id,
        direction=report.direction,
        heard_at=now,
        heard_by=heard_by,
        from_number=report.from_number if report.direction is CallDirection.INBOUND else None,
    )
    bucket.write_bytes(name, request.model_dump_json(), "application/json")
    return name
