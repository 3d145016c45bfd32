"""Runs evaluation calls through the real post-call pieces and scores them.

render (devstack.demo_calls: Piper agent, the call's caller voice, stereo Ogg/Opus + session
report) -> transcribe_call (the pipeline's own stage: decode, channel attribution, Whisper,
redaction as one conversation) -> the do-not-call rules (post-call's heard_after_the_call over
the redacted transcript, and the live backstop's rules over the spoken lines, each caller turn
with the agent's turn before it) -> the LLM analysis (CallLLM, re-redacted as the pipeline stores it).

A PII span counts for recall where the raw STT output (or the live transcript) holds it: a span
Whisper never wrote cannot leak from that transcript, and the scores say how many were heard.
Nothing here prints or stores raw PII: results carry the kind of a leak and the form found.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenter.do_not_call import conversation_asks_not_to_be_called
from callcenter.redaction import RedactionPolicy
from devstack.demo_calls import DemoCall, render_call
from devstack.evalset.calls import CALLS, EvalCall
from devstack.evalset.labels import leaks

STARTED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
_RENDER_VERSION = "2"  # bump when rendering changes in a way the cache key cannot see
# Piper without sampling noise: a call renders the same samples every time, so Whisper writes the
# same words and a test's result does not change from run to run.
AGENT_VOICE = "piper:1.0"


def _cache_key(call: EvalCall) -> str:
    payload = json.dumps([_RENDER_VERSION, call.caller_voice, [(s.value, t) for s, t in call.lines]])
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


def render(call: EvalCall, cache_dir: Path | None = None) -> DemoCall:
    """The call's recording and session report; read from ``cache_dir`` when rendered before."""
    index = CALLS.index(call) if call in CALLS else 0
    if cache_dir is not None:
        base = cache_dir / f"{call.name}-{_cache_key(call)}"
        audio, meta = base.with_suffix(".ogg"), base.with_suffix(".json")
        if audio.exists() and meta.exists():
            from callcenter.report import parse_report

            saved = json.loads(meta.read_text())
            return DemoCall(
                parse_report(saved["report"].encode()),
                saved["audio_object"],
                saved["report_object"],
                audio.read_bytes(),
            )
    demo = render_call(
        call.scenario,
        STARTED + timedelta(minutes=7 * index),
        random.Random(index),
        index,
        caller_voice=call.caller_voice,
        agent_voice=AGENT_VOICE,
    )
    if cache_dir is not None:
        cache_dir.mkdir(parents=True, exist_ok=True)
        audio.write_bytes(demo.audio)
        meta.write_text(
            json.dumps(
                {
                    "report": demo.report.model_dump_json(),
                    "audio_object": demo.audio_object,
                    "report_object": demo.report_object,
                }
            )
        )
    return demo


@dataclass
class SpanResult:
    kind: str
    heard: bool  # the raw STT output held it in some form
    leaked_recording: list[str] = field(default_factory=list)  # forms found in the redacted recording transcript
    leaked_live: list[str] = field(default_factory=list)  # ... in the redacted live transcript
    leaked_analysis: list[str] = field(default_factory=list)  # ... in the stored (re-redacted) analysis

    @property
    def leaked(self) -> bool:
        return bool(self.leaked_recording or self.leaked_live or self.leaked_analysis)


@dataclass
class CallResult:
    name: str
    engine: str
    voice: str
    spans: list[SpanResult]
    dnc_expected: bool
    dnc_postcall: bool  # post-call's reading of the recording's redacted transcript
    dnc_live_words: bool  # the live backstop's rules on the spoken words (the caller's, in context)
    sentiment_expected: str
    follow_up_expected: bool
    sentiment: str | None = None  # None: no analysis (not run, or refused as invalid)
    follow_up: bool | None = None
    analysis_error: str | None = None
    transcript_source: str | None = None
    redacted_transcript: list[str] = field(default_factory=list)  # "speaker: text", redacted
    stt_s: float = 0.0
    llm_s: float = 0.0  # the analysis's time, whoever wrote it
    tags: list[str] = field(default_factory=list)
    analyser: str | None = None  # who was asked to analyse: "llm:<model>", "extractive"; None: no analysis run
    analysed_by: str | None = None  # who wrote the stored analysis (the extractive one may stand in for a model)
    summary: str | None = None  # the stored (re-redacted) analysis's summary

    @property
    def leaked(self) -> bool:
        return any(s.leaked for s in self.spans)


def run_call(
    call: EvalCall,
    stt,
    llm=None,
    policy: RedactionPolicy | None = None,
    cache_dir: Path | None = None,
) -> CallResult:
    """One call through the pipeline's pieces. ``stt``: a SpeechToText; ``llm``: a CallLLM (its
    ``analyser`` says whether the model or the extractive analyser writes), or None: no analysis."""
    from callcenter.record import EXTRACTIVE_ANALYSER, AnalysisStatus, llm_analyser
    from orchestration.defs.postcall.analysis import Analyser, analyse_call
    from orchestration.defs.postcall.calls import CallRef
    from orchestration.defs.postcall.do_not_call import heard_after_the_call
    from orchestration.defs.postcall.transcription import transcribe_call

    policy = policy or RedactionPolicy()
    demo = render(call, cache_dir)
    objects = {demo.audio_object: demo.audio, demo.report_object: demo.report.model_dump_json().encode()}
    raw: list[dict] = []
    transcribed = transcribe_call(
        CallRef(demo.report_object, 1),
        objects.get,
        stt,
        policy,
        write_raw=lambda _name, data: raw.extend(json.loads(data)),
    )
    if transcribed.failure:
        raise RuntimeError(f"{call.name}: not transcribed: {transcribed.failure}")
    recording = [s.text for s in transcribed.recording_transcript]
    live = [s.text for s in transcribed.live_transcript]
    result = CallResult(
        name=call.name,
        engine=call.engine,
        voice=call.caller_voice,
        spans=[],
        dnc_expected=call.do_not_call,
        dnc_postcall=False,
        dnc_live_words=conversation_asks_not_to_be_called(call.lines),
        sentiment_expected=call.sentiment.value,
        follow_up_expected=call.follow_up,
        transcript_source=transcribed.chosen.value if transcribed.chosen else None,
        redacted_transcript=[f"{s.speaker.value}: {s.text}" for s in transcribed.transcript],
        stt_s=round(transcribed.stt_seconds, 2),
        tags=list(call.tags),
    )
    analyzed = None
    stored_analysis = ""
    if llm is not None:
        started = time.perf_counter()
        # as call_analyses does it (no campaign: the set's calls carry no goal or fields)
        analyzed = analyse_call(llm, demo.report.call_id, transcribed.transcript, None, (), policy)
        result.analyser = EXTRACTIVE_ANALYSER if llm.analyser is Analyser.EXTRACTIVE else llm_analyser(llm.model)
        result.analysis_error = analyzed.error
        if analyzed.status is AnalysisStatus.OK and analyzed.analysis is not None:
            analysis = analyzed.analysis
            result.sentiment, result.follow_up = analysis.sentiment.value, analysis.follow_up_needed
            result.summary, result.analysed_by = analysis.summary, analysis.analyser
            stored_analysis = analysis.model_dump_json()
        else:
            analyzed = None
        result.llm_s = round(time.perf_counter() - started, 2)
    result.dnc_postcall = heard_after_the_call(transcribed, analyzed) is not None
    for span in call.pii:
        result.spans.append(
            SpanResult(
                kind=span.kind.value,
                heard=bool(leaks(span, (r["text"] for r in raw))),
                leaked_recording=leaks(span, recording),
                leaked_live=leaks(span, live),
                leaked_analysis=leaks(span, [stored_analysis]) if stored_analysis else [],
            )
        )
    return result


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def score(results: Iterable[CallResult]) -> dict:
    """The bench's figures: redaction recall, do-not-call recall/precision, analysis accuracy;
    the held-out calls' (written after the rules were fixed on the others) again on their own."""
    results = list(results)
    held_out = [r for r in results if "held_out" in r.tags]
    figures = _score(results)
    if held_out:
        figures["held_out"] = {
            k: v
            for k, v in _score(held_out).items()
            if k
            in (
                "calls",
                "redaction_recall",
                "leaks",
                "dnc_postcall",
                "dnc_missed",
                "dnc_false",
                "analysis_valid",
                "sentiment_accuracy",
                "follow_up_accuracy",
            )
        }
    return figures


def _score(results: list[CallResult]) -> dict:
    spans = [s for r in results for s in r.spans]
    heard = [s for s in spans if s.heard]
    by_kind = {}
    for kind in sorted({s.kind for s in spans}):
        of_kind = [s for s in spans if s.kind == kind]
        by_kind[kind] = {
            "spans": len(of_kind),
            "heard_by_stt": sum(s.heard for s in of_kind),
            "leaked": sum(s.leaked for s in of_kind),
        }

    def dnc(pred: Callable[[CallResult], bool]) -> dict:
        tp = sum(1 for r in results if r.dnc_expected and pred(r))
        fp = sum(1 for r in results if not r.dnc_expected and pred(r))
        fn = sum(1 for r in results if r.dnc_expected and not pred(r))
        return {"recall": _ratio(tp, tp + fn), "precision": _ratio(tp, tp + fp), "tp": tp, "fp": fp, "fn": fn}

    analysed = [r for r in results if r.sentiment is not None]
    return {
        "calls": len(results),
        "engines": sorted({r.engine for r in results}),
        "voices": len({r.voice for r in results}),
        "pii_spans": len(spans),
        "pii_spans_heard_by_stt": len(heard),
        # Over every span: a leak from the live transcript or the analysis counts whatever STT wrote.
        "redaction_recall": _ratio(sum(not s.leaked for s in spans), len(spans)),
        "redaction_recall_of_heard_spans": _ratio(sum(not s.leaked_recording for s in heard), len(heard)),
        "leaks": [
            {
                "call": r.name,
                "kind": s.kind,
                "recording": len(s.leaked_recording),
                "live": len(s.leaked_live),
                "analysis": len(s.leaked_analysis),
            }
            for r in results
            for s in r.spans
            if s.leaked
        ],  # fmt: skip
        "redaction_by_kind": by_kind,
        "dnc_postcall": dnc(lambda r: r.dnc_postcall),
        "dnc_live_words": dnc(lambda r: r.dnc_live_words),
        "dnc_missed": [r.name for r in results if r.dnc_expected and not r.dnc_postcall],
        "dnc_false": [r.name for r in results if not r.dnc_expected and r.dnc_postcall],
        "analysers": sorted({r.analyser for r in results if r.analyser}),
        "analysis_valid": _ratio(len(analysed), len(results)) if any(r.analyser or r.llm_s for r in results) else None,
        "sentiment_accuracy": _ratio(sum(r.sentiment == r.sentiment_expected for r in analysed), len(results))
        if analysed
        else None,
        "follow_up_accuracy": _ratio(sum(r.follow_up == r.follow_up_expected for r in analysed), len(results))
        if analysed
        else None,
        # always the set's most common answer: what an analysis must beat to say anything
        "baseline_sentiment_accuracy": _most_common_share([r.sentiment_expected for r in results]),
        "baseline_follow_up_accuracy": _most_common_share([r.follow_up_expected for r in results]),
        "stt_s": round(sum(r.stt_s for r in results), 1),
        "llm_s": round(sum(r.llm_s for r in results), 1),
    }


def _most_common_share(answers: list) -> float | None:
    return _ratio(max((answers.count(a) for a in set(answers)), default=0), len(answers))


def as_dict(result: CallResult) -> dict:
    return asdict(result)


def from_dict(data: dict) -> CallResult:
    """A result ``as_dict`` wrote (the bench's --details), to score again."""
    return CallResult(**(data | {"spans": [SpanResult(**s) for s in data["spans"]]}))
