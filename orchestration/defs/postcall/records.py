"""Assemble the CallRecord the index stores from the stages' results."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from callcenter.record import (
    AnalysisStatus,
    CallAnalysis,
    CallRecord,
    LatencySummary,
    RecordStatus,
)
from callcenter.report import SessionReport
from callindex.aggregates import percentile, rounded
from orchestration.defs.postcall.transcription import TranscribedCall


@dataclass
class AnalyzedCall:
    call_id: str
    status: AnalysisStatus
    analysis: CallAnalysis | None = None
    error: str | None = None
    attempts: int = 0
    seconds: float = 0.0


def latency_summary(report: SessionReport) -> LatencySummary:
    def values(attr: str) -> list[float]:
        return [v for t in report.latency if (v := getattr(t, attr)) is not None]

    v2v = values("voice_to_voice_ms")
    return LatencySummary(
        turns_measured=len(report.latency),
        voice_to_voice_p50_ms=rounded(percentile(v2v, 0.5)),
        voice_to_voice_p95_ms=rounded(percentile(v2v, 0.95)),
        llm_ttft_p50_ms=rounded(percentile(values("llm_ttft_ms"), 0.5)),
        tts_ttfb_p50_ms=rounded(percentile(values("tts_ttfb_ms"), 0.5)),
        eou_to_stt_final_p50_ms=rounded(percentile(values("eou_to_stt_final_ms"), 0.5)),
        per_turn=sorted(report.latency, key=lambda t: t.turn_index),
    )


def build_record(
    call: TranscribedCall, analyzed: AnalyzedCall | None, recording_uri: str | None, processed_at: datetime
) -> CallRecord:
    report = call.report
    if report is None:
        raise ValueError(f"{call.call_id} has no session report: it cannot be indexed ({call.failure})")
    analyzed = analyzed or AnalyzedCall(call.call_id, AnalysisStatus.SKIPPED)
    return CallRecord(
        call_id=report.call_id,
        direction=report.direction,
        campaign_id=report.campaign_id,
        contact_id=report.contact_id,
        attempt_id=report.attempt_id,
        from_number=report.from_number,
        to_number=report.to_number,
        persona=report.persona,
        agent_name=report.agent_name,
        sip_status_code=report.sip_status_code,
        started_at=report.started_at,
        answered_at=report.answered_at,
        ended_at=report.ended_at,
        duration_s=max(report.duration_s, 0.0),
        outcome=report.outcome,
        recording_disclosed=report.recording_disclosed,
        automated_agent_disclosed=report.automated_agent_disclosed,
        do_not_call_requested=report.do_not_call_requested,
        transferred_to=report.transferred_to,
        recording_uri=recording_uri if call.recording_bytes else None,
        recording_path=call.recording_object if call.recording_bytes else None,
        recording_duration_s=call.recording_duration_s,
        recording_channel_mode=call.channel_mode,
        recording_channel_reason=call.channel_reason,
        transcript=call.transcript,
        transcript_source=call.chosen,
        alternate_transcript=call.alternate_transcript,
        analysis=analyzed.analysis if analyzed.status is AnalysisStatus.OK else None,
        analysis_status=analyzed.status,
        analysis_error=analyzed.error,
        status=RecordStatus.FAILED if call.failure else RecordStatus.INDEXED,
        failure_reason=call.failure or call.recording_problem,
        latency=latency_summary(report),
        redactions=call.redactions,
        source_generation=call.ref.generation,
        processed_at=processed_at,
    )
