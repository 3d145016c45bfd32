"""An original call against its replay: outcome, both disclosures, do-not-call, per-turn
latency and how alike the words are. Pure functions of two session reports."""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from statistics import fmean

from callcenter.redaction import RedactionPolicy, redact_conversation
from callcenter.replay import (
    CallComparison,
    CallSide,
    ReplayedTurn,
    ReplayStatus,
    ReplaySummary,
)
from callcenter.report import SessionReport, Speaker
from callindex import percentile

DISCLOSURES = ("recording_disclosed", "automated_agent_disclosed")
_WORD = re.compile(r"[a-z0-9']+")


def side_of(report: SessionReport, policy: RedactionPolicy | None = None, bucket_name: str | None = None) -> CallSide:
    """What the comparison keeps of one run: facts, latency and the words, redacted as one
    conversation (a card number spread over turns is still one number)."""
    redacted = redact_conversation([(t.speaker.value, t.text) for t in report.turns], policy)
    return CallSide(
        call_id=report.call_id,
        persona=report.persona,
        outcome=report.outcome,
        recording_disclosed=report.recording_disclosed,
        automated_agent_disclosed=report.automated_agent_disclosed,
        do_not_call_requested=report.do_not_call_requested,
        voice_to_voice_ms=[lat.voice_to_voice_ms for lat in report.latency if lat.voice_to_voice_ms is not None],
        turns=[
            ReplayedTurn(speaker=t.speaker, text=text) for t, text in zip(report.turns, redacted.texts, strict=True)
        ],
        recording_uri=f"gs://{bucket_name}/{report.recording_path}" if bucket_name and report.recording_path else None,
    )


def words_of(side: CallSide, speaker: Speaker) -> list[str]:
    return _WORD.findall(" ".join(t.text for t in side.turns if t.speaker is speaker).lower())


def similarity(a: Sequence[str], b: Sequence[str]) -> float | None:
    """0..1 over word sequences (difflib's ratio); None when neither side said anything."""
    if not a and not b:
        return None
    return round(difflib.SequenceMatcher(a=list(a), b=list(b), autojunk=False).ratio(), 3)


def compare(original: CallSide, replay: CallSide) -> CallComparison:
    return CallComparison(
        call_id=original.call_id,
        status=ReplayStatus.REPLAYED,
        original=original,
        replay=replay,
        outcome_changed=original.outcome != replay.outcome,
        disclosure_regressions=[d for d in DISCLOSURES if getattr(original, d) and not getattr(replay, d)],
        do_not_call_changed=original.do_not_call_requested != replay.do_not_call_requested,
        agent_similarity=similarity(words_of(original, Speaker.AGENT), words_of(replay, Speaker.AGENT)),
        caller_similarity=similarity(words_of(original, Speaker.CALLER), words_of(replay, Speaker.CALLER)),
    )


def failed(call_id: str, reason: str, original: CallSide | None = None) -> CallComparison:
    return CallComparison(call_id=call_id, status=ReplayStatus.FAILED, reason=reason, original=original)


def skipped(call_id: str, reason: str, original: CallSide) -> CallComparison:
    return CallComparison(call_id=call_id, status=ReplayStatus.SKIPPED, reason=reason, original=original)


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def summarize(rows: Sequence[CallComparison]) -> ReplaySummary:
    """Counts and latency percentiles over the calls both runs completed (before and after are
    taken over the same calls, so a failed replay does not move 'before')."""
    done = [r for r in rows if r.status is ReplayStatus.REPLAYED and r.original and r.replay]
    before = [v for r in done for v in r.original.voice_to_voice_ms]  # type: ignore[union-attr]
    after = [v for r in done for v in r.replay.voice_to_voice_ms]  # type: ignore[union-attr]
    sims = [r.agent_similarity for r in done if r.agent_similarity is not None]
    return ReplaySummary(
        calls=len(rows),
        replayed=len(done),
        failed=sum(r.status is ReplayStatus.FAILED for r in rows),
        skipped=sum(r.status is ReplayStatus.SKIPPED for r in rows),
        outcomes_changed=sum(r.outcome_changed for r in done),
        disclosure_regressions=sum(bool(r.disclosure_regressions) for r in done),
        do_not_call_differences=sum(r.do_not_call_changed for r in done),
        v2v_p50_ms_before=_rounded(percentile(before, 0.5)),
        v2v_p95_ms_before=_rounded(percentile(before, 0.95)),
        v2v_p50_ms_after=_rounded(percentile(after, 0.5)),
        v2v_p95_ms_after=_rounded(percentile(after, 0.95)),
        agent_similarity_mean=round(fmean(sims), 3) if sims else None,
    )
