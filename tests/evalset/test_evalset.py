"""The compliance evaluation set (devstack/evalset): its labels, and a subset of its calls through
the real pipeline pieces: rendered speech (Piper, espeak-ng and flite callers), Whisper tiny.en,
redaction, post-call's do-not-call reading, the local stack's (extractive) analysis. Any leak fails,
in the transcripts or the stored analysis, and so does a missed or false do-not-call. The whole set
runs in bench/compliance_evalset.py (figures in docs/benchmarks.md)."""

from __future__ import annotations

import pytest

from callcenter.record import Sentiment
from devstack.evalset.calls import BY_NAME, CALLS, TEST_SUBSET
from devstack.evalset.labels import PiiKind, PiiSpan, digit_streams, leaks
from devstack.evalset.run import run_call, score


def test_the_set_covers_what_the_issue_asks_for() -> None:
    assert len(CALLS) >= 40
    assert {c.engine for c in CALLS} == {"espeak", "flite", "piper"}
    assert {s.kind for c in CALLS for s in c.pii} == set(PiiKind)
    assert sum(c.do_not_call for c in CALLS) >= 10 and sum("near_miss" in c.tags for c in CALLS) >= 5
    assert {c.sentiment for c in CALLS} == set(Sentiment)
    assert {c.follow_up for c in CALLS} == {True, False}
    assert {BY_NAME[n].engine for n in TEST_SUBSET} == {"espeak", "flite", "piper"}


def test_a_card_must_not_appear_in_any_form_stt_writes() -> None:
    span = PiiSpan(PiiKind.CARD, ("4111", "1111", "1111", "1111"))
    forms = span.must_not_appear
    for form in ("4111111111111111", "4111 1111 1111 1111", "4-1-1-1", "four one one one", "forty one eleven", "41 11"):
        assert form in forms
    for written in ("It's 4-1-1-1, 1-1-1-1", "forty one eleven, eleven eleven", "41 11, 11 11", "4111, um, 1111"):
        assert leaks(span, [written]), written
    assert leaks(span, ["[REDACTED CARD]", "the payment of $80 went through"]) == []


def test_leaks_are_read_back_out_of_number_words_and_fillers() -> None:
    assert digit_streams("oh nine, twenty seven") == ["0927"]
    assert digit_streams("five three six, um, two two, one eight four seven") == ["536221847"]
    assert leaks(PiiSpan(PiiKind.SSN, ("536", "22", "1847")), ["it's five three six twenty two 1847"])
    expiry = PiiSpan(PiiKind.EXPIRY, ("12", "28"), ("december 2028",))
    assert leaks(expiry, ["valid thru 12/28"]) and leaks(expiry, ["December 2028"])
    assert not leaks(expiry, ["valid thru [REDACTED EXPIRY]"])


@pytest.fixture(scope="module")
def stt():
    from orchestration.defs.postcall.speech import WhisperSpeechToText

    return WhisperSpeechToText(cpu_threads=2)


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("evalset-renders")


@pytest.fixture(scope="module")
def extractive():
    """The local stack's analyser: no model is asked (the endpoint does not exist)."""
    from orchestration.defs.postcall.analysis import Analyser, CallLLM

    return CallLLM(base_url="http://127.0.0.1:9/v1", model="none", analyser=Analyser.EXTRACTIVE)


@pytest.mark.parametrize("name", TEST_SUBSET)
def test_a_call_through_the_pipeline_leaks_nothing_and_hears_do_not_call(name: str, stt, renders, extractive) -> None:
    call = BY_NAME[name]
    result = run_call(call, stt, extractive, cache_dir=renders)
    assert result.analysed_by == "extractive" and result.summary  # its stored analysis is checked for leaks too
    leaked = [(s.kind, s.leaked_recording, s.leaked_live, s.leaked_analysis) for s in result.spans if s.leaked]
    assert leaked == [], (leaked, result.redacted_transcript, result.summary)
    assert result.dnc_postcall is call.do_not_call, result.redacted_transcript
    assert result.dnc_live_words is call.do_not_call
    assert score([result])["redaction_recall"] in (1.0, None)
