"""The extractive analysis (no model): the same schema the LLM fills, from the redacted transcript
only, labelled 'extractive' where it is stored; the local stack's choice of it; the fallback when a
model's output is refused."""

from __future__ import annotations

import dataclasses
import json
import logging
import re

import dagster as dg
import pytest

from callcenter.ids import new_call_id
from callcenter.record import EXTRACTIVE_ANALYSER, AnalysisStatus, Sentiment, TranscriptSegment
from callcenter.redaction import RedactionPolicy, redact_conversation
from callcenter.report import Speaker
from orchestration.defs.postcall import call_analyses
from orchestration.defs.postcall.analysis import Analyser, CallLLM, analyse_call
from orchestration.defs.postcall.extractive import caller_sentiment, extractive_analysis
from orchestration.defs.postcall.resources import RedactionSettings
from orchestration.resources.campaigns import CampaignCatalog
from tests.postcall.test_analysis_redaction import STARTED, ScriptedLLM, transcribed

A, C = Speaker.AGENT, Speaker.CALLER


def segments(*lines: tuple[Speaker, str]) -> list[TranscriptSegment]:
    return [TranscriptSegment(speaker=s, text=t, start=float(i), end=i + 0.9) for i, (s, t) in enumerate(lines)]


class NoModel(CallLLM):
    """A CallLLM whose endpoint must never be asked."""

    def client(self):  # noqa: ANN201
        raise AssertionError("the extractive analyser asked the model")


def test_it_fills_the_schema_from_the_calls_own_sentences_and_says_so() -> None:
    analysis = extractive_analysis(
        segments(
            (A, "Hi, this is Ava, an automated assistant. How can I help you today?"),
            (C, "Hello. Do you accept Delta Dental insurance?"),
            (A, "I need to check with billing. Someone will call you back this afternoon."),
            (C, "Okay, thanks."),
        )
    )
    assert analysis.analyser == EXTRACTIVE_ANALYSER and analysis.is_extractive
    assert analysis.summary == (
        'Caller: "Do you accept Delta Dental insurance?" Agent: "Someone will call you back this afternoon."'
    )
    assert analysis.customer_intent == "Do you accept Delta Dental insurance?"
    assert analysis.follow_up_needed and analysis.disposition == "follow_up"
    assert analysis.action_items == ["Someone will call you back this afternoon."]
    assert analysis.do_not_call_requested is False and analysis.goal_achieved is None


def test_the_callers_last_words_after_the_outcome_are_quoted_too() -> None:
    analysis = extractive_analysis(
        segments(
            (C, "You charged my card twice and I am furious about it."),
            (A, "I've asked billing to refund it and they will call you within two days."),
            (C, "This is the second time this happened. Fix it."),
        )
    )
    assert analysis.summary.endswith('Caller: "This is the second time this happened."')
    assert analysis.sentiment is Sentiment.NEGATIVE and analysis.follow_up_needed


def test_quotes_stand_in_the_order_they_were_said() -> None:
    analysis = extractive_analysis(
        segments(
            (A, "Hi, this is Ava. I'm calling about your annual checkup."),
            (C, "I moved to a different dentist two years ago."),
            (A, "Understood. Goodbye."),
        )
    )
    assert analysis.summary == (
        'Agent: "I\'m calling about your annual checkup." Caller: "I moved to a different dentist two years ago."'
    )


def test_a_do_not_call_request_is_read_by_the_shared_rules_and_asks_no_follow_up() -> None:
    analysis = extractive_analysis(
        segments(
            (A, "Hi, I'm calling about your annual checkup."),
            (C, "Don't ring this number again. Someone can call my lawyer."),
            (A, "Understood. We will contact nobody. Goodbye."),
        )
    )
    assert analysis.do_not_call_requested is True
    assert analysis.disposition == "do_not_call" and not analysis.follow_up_needed and analysis.action_items == []


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [
        (["Thanks.", "Okay, bye.", "Have a nice day."], Sentiment.NEUTRAL),
        (["I'd like to book a cleaning, please."], Sentiment.NEUTRAL),  # a request form, no feeling
        (["Great, thanks a lot."], Sentiment.POSITIVE),
        (["I waited forty minutes and it was unacceptable.", "Thanks."], Sentiment.NEGATIVE),
        (["I'm annoyed I keep missing these.", "But thanks for being so flexible, that's wonderful."], Sentiment.MIXED),
    ],
)
def test_sentiment_is_the_callers_by_the_lexicon(sentences: list[str], expected: Sentiment) -> None:
    assert caller_sentiment(sentences) is expected


def test_only_the_callers_words_carry_sentiment() -> None:
    analysis = extractive_analysis(
        segments((A, "Wonderful! That's fantastic, I love it."), (C, "What time do you open on Saturday?"))
    )
    assert analysis.sentiment is Sentiment.NEUTRAL


def test_campaign_time_fields_are_extracted_where_a_rule_finds_them() -> None:
    analysis = extractive_analysis(
        segments(
            (C, "I'm driving. Call me back tomorrow morning."),
            (A, "Sure. You're booked for Wednesday at 3, and I'll call you tomorrow morning."),
        ),
        goal="book the annual checkup",
        fields=("appointment_time", "callback_time", "preferred_plan"),
    )
    assert analysis.extracted_fields == {
        "appointment_time": "Wednesday at 3",
        "callback_time": "tomorrow morning",
        "preferred_plan": None,  # no rule knows a plan
    }
    assert analysis.goal_achieved is None  # no rule reads a goal


RAW_CONVERSATION = [
    ("agent", "Sure. What is the number on the card?"),
    ("caller", "I'd like to pay my bill with the card 4111 1111 1111 1111."),
    ("agent", "And the three digits by the signature strip?"),
    ("caller", "731."),
    ("agent", "Thanks. And your social security number for the claim?"),
    ("caller", "Sure, 123-45-6789. Please call me back when it's done."),
    ("agent", "Thank you, the payment went through and billing will call you tomorrow at 10."),
]
MUST_NOT_APPEAR = re.compile(r"4111|1111|731|123-45|6789|seven three one", re.IGNORECASE)


def redacted_call(call_id: str):
    """A transcribed call whose transcript is the pipeline's redaction of RAW_CONVERSATION."""
    texts = redact_conversation(RAW_CONVERSATION, RedactionPolicy()).texts
    call = transcribed(call_id)
    return dataclasses.replace(
        call,
        report=call.report.model_copy(update={"campaign_id": None}),  # inbound: no campaign
        live_transcript=[
            TranscriptSegment(speaker=s, text=t, start=float(i), end=i + 0.9)
            for i, ((s, _), t) in enumerate(zip(RAW_CONVERSATION, texts, strict=True))
        ],
    )


def test_the_local_stack_stores_extractive_analyses_with_no_pii_in_the_record_logs_or_metadata(caplog) -> None:
    call_id = new_call_id(STARTED)
    call = redacted_call(call_id)
    assert "[REDACTED" in " ".join(s.text for s in call.transcript)  # what the analyser reads
    llm = NoModel(base_url="http://unused/v1", model="m", analyser=Analyser.EXTRACTIVE)
    with caplog.at_level(logging.DEBUG):
        events = list(
            call_analyses(
                dg.build_asset_context(),
                call_transcripts={call_id: call},
                call_llm=llm,
                redaction=RedactionSettings(),
                campaign_catalog=CampaignCatalog(directory="/nonexistent"),  # no campaign call: never read
            )
        )
    output = next(e for e in events if isinstance(e, dg.Output))
    analyzed = output.value[call_id]
    assert analyzed.status is AnalysisStatus.OK and analyzed.analysis.analyser == EXTRACTIVE_ANALYSER
    stored = analyzed.analysis.model_dump_json()
    assert "[REDACTED CARD]" in stored and "call me back" in stored  # quoted from the redacted words
    everything = " ".join([stored, repr(events), caplog.text])
    assert not MUST_NOT_APPEAR.search(everything), everything
    assert output.metadata["analysers"].data == {EXTRACTIVE_ANALYSER: 1}


def test_a_refused_model_analysis_falls_back_to_the_extractive_one_where_set() -> None:
    call = redacted_call(new_call_id(STARTED))
    policy = RedactionPolicy()
    degenerate = json.dumps(
        {
            "summary": "no, no, no, no, no!",
            "disposition": "x",
            "sentiment": "negative",
            "customer_intent": "None",
            "action_items": [],
            "follow_up_needed": False,
            "goal_achieved": None,
            "extracted_fields": {},
        }
    )
    refusing = ScriptedLLM(
        base_url="http://unused/v1", model="m", max_attempts=1, reads_do_not_call=False, reply=degenerate
    )
    failed = analyse_call(refusing, call.call_id, call.transcript, None, (), policy, refusing.client())
    assert failed.status is AnalysisStatus.FAILED and failed.analysis is None

    falling_back = ScriptedLLM(
        base_url="http://unused/v1",
        model="m",
        max_attempts=1,
        reads_do_not_call=False,
        extractive_fallback=True,
        reply=degenerate,
    )
    analyzed = analyse_call(falling_back, call.call_id, call.transcript, None, (), policy, falling_back.client())
    assert analyzed.status is AnalysisStatus.OK and analyzed.analysis.is_extractive
    assert analyzed.error.startswith("the model's analysis was refused: ") and "repeats 'no'" in analyzed.error
    assert not MUST_NOT_APPEAR.search(analyzed.analysis.model_dump_json())


def test_the_models_analysis_is_labelled_with_its_model() -> None:
    call = redacted_call(new_call_id(STARTED))
    reply = json.dumps(
        {
            "summary": "The caller paid the bill by card and asked for a call back.",
            "disposition": "payment_taken",
            "sentiment": "neutral",
            "customer_intent": "pay the bill",
            "action_items": [],
            "follow_up_needed": True,
            "goal_achieved": None,
            "extracted_fields": {},
        }
    )
    llm = ScriptedLLM(
        base_url="http://unused/v1", model="llama-3.1-8b", max_attempts=1, reads_do_not_call=False, reply=reply
    )
    analyzed = analyse_call(llm, call.call_id, call.transcript, None, (), RedactionPolicy(), llm.client())
    assert analyzed.analysis.analyser == "llm:llama-3.1-8b" and not analyzed.analysis.is_extractive


def test_the_local_stack_analyses_extractively_and_gke_with_its_model() -> None:
    from orchestration.defs import postcall
    from orchestration.deployment import Deployment

    local = postcall.resources(Deployment.LOCAL)["call_llm"]
    gke = postcall.resources(Deployment.GKE)["call_llm"]
    assert local.analyser is Analyser.EXTRACTIVE and local.extractive_fallback
    assert gke.analyser is Analyser.LLM and not gke.extractive_fallback


def test_the_extractive_summary_comes_from_redacted_words_without_the_second_redaction(monkeypatch) -> None:
    # With the stored analysis's own redaction switched off, nothing raw is there to catch: the
    # analyser only ever read what the pipeline's redaction left.
    import orchestration.defs.postcall.analysis as analysis_module

    monkeypatch.setattr(analysis_module, "redact_analysis", lambda analysis, policy=None: analysis)
    call = redacted_call(new_call_id(STARTED))
    llm = NoModel(base_url="http://unused/v1", model="m", analyser=Analyser.EXTRACTIVE)
    analyzed = analyse_call(llm, call.call_id, call.transcript, None, (), RedactionPolicy())
    stored = analyzed.analysis.model_dump_json()
    assert "[REDACTED CARD]" in analyzed.analysis.summary and "[REDACTED" in stored
    assert not MUST_NOT_APPEAR.search(stored), stored
