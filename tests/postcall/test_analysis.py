"""LLM analysis against llama.cpp's real server (SmolLM2-135M): schema-constrained, validated, retried."""

from __future__ import annotations

import re

import pytest

from callcenter.record import CallAnalysis
from orchestration.defs.postcall.analysis import (
    AnalysisFailed,
    CallLLM,
    StructuredOutput,
    output_schema,
    parse_analysis,
)
from tests.conftest import free_port
from tests.postcall.conftest import LLM_MODEL

pytestmark = pytest.mark.xdist_group("postcall")

TRANSCRIPT = """agent: Hi, this is Ava, an automated assistant for Jade Dental. How can I help?
caller: I would like to book a cleaning appointment for next week.
agent: I have Thursday at two. Does that work?
caller: Thursday at two works for me. My card is [REDACTED CARD].
agent: You are booked for Thursday at two."""


RECALL = ("book a checkup", ("appointment_time",))  # a campaign's goal and extracted fields


def llm(base_url: str, **overrides) -> CallLLM:
    settings = {
        "base_url": base_url,
        "model": LLM_MODEL,
        "structured_output": StructuredOutput.JSON_OBJECT_SCHEMA,
        "reads_do_not_call": False,  # as the local stack runs SmolLM2 (its yes/no is noise)
        "max_attempts": 2,
        "backoff_s": 0.05,
    }
    return CallLLM(**{**settings, **overrides})


VALID = (
    '{"summary": "The caller booked a cleaning for Thursday at two.", "disposition": "booked", '
    '"sentiment": "positive", "customer_intent": "book a cleaning", "action_items": [], '
    '"follow_up_needed": false, "goal_achieved": true, "extracted_fields": {}}'
)
PROSE = re.compile(r"^[A-Za-z][^{}]*$")


def test_structured_analysis_validates(llm_base_url: str) -> None:
    result = llm(llm_base_url).analyze(TRANSCRIPT, *RECALL)
    # The server's grammar holds the model to prose: no template debris in what analysts read.
    assert PROSE.match(result.analysis.summary) and PROSE.match(result.analysis.customer_intent)
    assert isinstance(result.analysis, CallAnalysis)
    assert set(result.analysis.extracted_fields) == {"appointment_time"}  # the campaign's fields, exactly
    assert result.attempts >= 1


def test_invalid_output_is_retried_then_recorded_as_failed(llm_base_url: str) -> None:
    # 8 tokens cannot hold the JSON object: the server returns cut-off, invalid JSON every time.
    with pytest.raises(AnalysisFailed) as failed:
        llm(llm_base_url, max_tokens=8).analyze(TRANSCRIPT, *RECALL)
    assert failed.value.attempts == 2
    assert "not a valid CallAnalysis" in failed.value.reason and "max_tokens" in failed.value.reason
    assert not failed.value.transient and failed.value.seconds > 0


def test_unreachable_endpoint_fails_with_the_url() -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(AnalysisFailed, match="unreachable") as failed:
        llm(url).analyze(TRANSCRIPT)
    assert url in failed.value.reason and failed.value.attempts == 2
    assert failed.value.transient  # the step fails and is retried; calls are not indexed as failed


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "no content"),
        ('{"summary": "x"', "not a valid CallAnalysis"),
        ('{"summary": "ok", "disposition": "Sale!", "sentiment": "happy"}', "disposition"),
        # Template debris is no summary, whatever the rest says.
        (VALID.replace("The caller booked a cleaning for Thursday at two.", "{ { json_data }} {"), "summary"),
        (VALID.replace("The caller booked a cleaning for Thursday at two.", "{0} {1}"), "summary"),
        (VALID.replace("The caller booked a cleaning for Thursday at two.", "10.2.3.4.5 10/23/2019"), "summary"),
        (VALID.replace('"book a cleaning"', '"{ {"'), "customer_intent"),
    ],
)
def test_parse_rejects_bad_output(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_analysis(raw)


@pytest.mark.parametrize(
    ("summary", "reason"),
    [
        ("no, no, no!", "has 3 word"),  # what SmolLM2-135M wrote on the local stack
        ("No no no no, the caller said no.", "repeats 'no'"),
        ("The caller called. The caller called. The caller called.", "repeats 'the caller called'"),
        ("Two or three sentences: what happened on the call.", "copies the instructions"),
        ("Answer only with JSON matching the schema, please.", "copies the instructions"),
        ("Lorem ipsum.", "placeholder"),
        ("The call yes, the end ok, yes the call ok, the end yes.", "distinct of"),
    ],
)
def test_degenerate_prose_is_refused_naming_why(summary: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"not a usable CallAnalysis: summary .*{re.escape(reason)}"):
        parse_analysis(VALID.replace("The caller booked a cleaning for Thursday at two.", summary))


def test_degenerate_intent_and_action_items_are_refused() -> None:
    with pytest.raises(ValueError, match="customer_intent has 1 word"):
        parse_analysis(VALID.replace('"book a cleaning"', '"cleaning"'))
    with pytest.raises(ValueError, match="action_items repeats 'call'"):
        parse_analysis(VALID.replace('"action_items": []', '"action_items": ["call call call back"]'))


def test_parse_accepts_prose() -> None:
    analysis = parse_analysis(VALID)
    assert analysis.summary == "The caller booked a cleaning for Thursday at two."
    assert analysis.customer_intent == "book a cleaning"


def test_schema_spells_out_campaign_fields() -> None:
    schema = output_schema(("appointment_time",))
    fields = schema["$defs"]["ExtractedFields"]
    assert fields["required"] == ["appointment_time"] and fields["additionalProperties"] is False
