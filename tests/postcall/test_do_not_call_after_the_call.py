"""Post-call hears a do-not-call request the live call missed (the caller said it as the line
dropped, the live STT garbled it): over the whole transcript by the shared rules, and by the
analysis model where it is trusted. It writes the request as the agent would, so dialing
suppresses the number within one tick, and the call's index row says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import dagster as dg

from callcenter.do_not_call import DoNotCallRequest, HeardBy
from callcenter.ids import new_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import do_not_call_path, report_path
from callcenter.record import AnalysisStatus, TranscriptSegment, TranscriptSource
from callcenter.report import SessionReport
from orchestration.defs.postcall.analysis import CallLLM, build_messages, output_schema
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.do_not_call import heard_after_the_call
from orchestration.defs.postcall.records import AnalyzedCall
from orchestration.defs.postcall.transcription import TranscribedCall
from tests.postcall.test_analysis import VALID

STARTED = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)


def _call(words: str, *, flagged: bool = False) -> TranscribedCall:
    call_id = new_call_id(STARTED)
    report = SessionReport(
        call_id=call_id,
        room="sip_+12125550177_x",
        direction=CallDirection.INBOUND,
        started_at=STARTED,
        answered_at=STARTED,
        ended_at=STARTED + timedelta(minutes=1),
        outcome=CallOutcome.ANSWERED,
        from_number="+12125550177",
        do_not_call_requested=flagged,
    )
    segments = [
        TranscriptSegment(speaker="agent", text="Thank you for calling. How can I help?", start=0.0, end=2.0),
        TranscriptSegment(speaker="caller", text=words, start=2.5, end=5.0),
    ]
    return TranscribedCall(
        ref=CallRef(report_path(call_id), 1), report=report, live_transcript=segments, chosen=TranscriptSource.LIVE
    )


def test_the_rules_hear_what_the_live_call_missed() -> None:
    assert heard_after_the_call(_call("Don't ring this number ever again."), None) is HeardBy.POSTCALL_RULES
    assert heard_after_the_call(_call("What time do you open tomorrow?"), None) is None
    # the agent already wrote it down: nothing more to write
    assert heard_after_the_call(_call("Stop calling me.", flagged=True), None) is None


def test_the_models_reading_counts_where_it_is_asked_for() -> None:
    call = _call("I'm done with you lot, we're finished.")  # no rule hears this
    analysis = json.loads(VALID) | {"do_not_call_requested": True}
    from callcenter.record import CallAnalysis

    analyzed = AnalyzedCall(call.report.call_id, AnalysisStatus.OK, analysis=CallAnalysis.model_validate(analysis))
    assert heard_after_the_call(call, analyzed) is HeardBy.POSTCALL_LLM
    assert output_schema((), True)["required"][-1] == "do_not_call_requested"
    assert "do_not_call_requested" not in output_schema((), False)["properties"]
    assert "not to be called" in build_messages("caller: hi", None, (), True)[-1]["content"]


def test_the_index_run_writes_the_request_for_dialing_and_flags_the_row(bucket, tmp_path) -> None:
    from orchestration.defs.postcall import call_index
    from orchestration.defs.postcall.resources import CallEmbeddings, CallIndexResource

    missed, ordinary = _call("Please take me off your list."), _call("Thanks, that's all.")
    events = list(
        call_index(
            dg.build_asset_context(partition_key="2026-11-24"),
            call_transcripts={c.report.call_id: c for c in (missed, ordinary)},
            call_analyses={},
            call_embeddings=CallEmbeddings(),
            call_index_store=CallIndexResource(data_dir=str(tmp_path)),
            recordings_bucket=bucket,
        )
    )
    written = DoNotCallRequest.model_validate_json(bucket.read_bytes(do_not_call_path(missed.report.call_id)))
    assert written.heard_by is HeardBy.POSTCALL_RULES and written.from_number == "+12125550177"
    assert bucket.read_if_present(do_not_call_path(ordinary.report.call_id)) is None
    output = next(e for e in events if isinstance(e, dg.Output))
    assert output.metadata["do_not_call_heard_after_the_call"].value == {"postcall_rules": 1}
    index = CallIndexResource(data_dir=str(tmp_path)).open()
    try:
        assert index.get(missed.report.call_id).do_not_call_requested is True
        assert index.get(ordinary.report.call_id).do_not_call_requested is False
    finally:
        index.close()


def test_a_local_model_is_not_asked() -> None:
    from orchestration.defs import postcall
    from orchestration.deployment import Deployment

    local = postcall.resources(Deployment.LOCAL)["call_llm"]
    gke = postcall.resources(Deployment.GKE)["call_llm"]
    assert isinstance(local, CallLLM) and local.reads_do_not_call is False
    assert gke.reads_do_not_call is True
