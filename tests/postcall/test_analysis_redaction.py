"""What the LLM writes is redacted again before it is stored: summary, intent, action items,
extracted fields, and the failure reasons that reach logs and Dagster metadata."""

from __future__ import annotations

import json
import re
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import httpx
import pytest
from openai import APIStatusError

from callcenter.ids import new_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import report_path
from callcenter.record import AnalysisStatus, TranscriptSegment, TranscriptSource
from callcenter.report import SessionReport
from orchestration.defs.postcall import call_analyses
from orchestration.defs.postcall.analysis import CallLLM, redact_analysis
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.resources import RedactionSettings
from orchestration.defs.postcall.transcription import TranscribedCall
from orchestration.resources.campaigns import CampaignCatalog
from tests.dialing.conftest import campaign, write_catalog

STARTED = datetime(2026, 11, 24, 15, 0, tzinfo=UTC)
# Every form of the call's card, SSN, CVV and expiry the model might write back.
MUST_NOT_APPEAR = re.compile(r"4111|1111|123-45|6789|731|12/28|seven three one", re.IGNORECASE)

LEAKY = json.dumps(
    {
        "summary": "The caller paid with card 4111 1111 1111 1111, exp 12/28, and gave SSN 123-45-6789.",
        "disposition": "payment_taken",
        "sentiment": "neutral",
        "customer_intent": "pay the bill with card 4111111111111111",
        "action_items": ["Confirm the payment on 4111-1111-1111-1111", "Verify social 123456789"],
        "follow_up_needed": True,
        "goal_achieved": None,
        "extracted_fields": {"card_cvv": "731", "card_expiry": "12/28", "security_code": "seven three one"},
    }
)


class ScriptedLLM(CallLLM):
    """CallLLM whose endpoint answers every request with ``reply``, or refuses it quoting ``refusal``."""

    reply: str = ""
    refusal: str = ""

    def client(self):  # noqa: ANN201
        def create(**_kw):  # noqa: ANN202
            if self.refusal:
                response = httpx.Response(400, request=httpx.Request("POST", "http://unused/v1/chat/completions"))
                raise APIStatusError(self.refusal, response=response, body=None)
            choice = SimpleNamespace(message=SimpleNamespace(content=self.reply), finish_reason="stop")
            return SimpleNamespace(choices=[choice])

        return SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))


def transcribed(call_id: str) -> TranscribedCall:
    report = SessionReport(
        call_id=call_id,
        room=call_id,
        direction=CallDirection.INBOUND,
        started_at=STARTED,
        answered_at=STARTED,
        ended_at=STARTED + timedelta(minutes=2),
        outcome=CallOutcome.ANSWERED,
        campaign_id="billing",
    )
    segment = TranscriptSegment(speaker="caller", text="my card is [REDACTED CARD]", start=1.0, end=3.0)
    return TranscribedCall(
        ref=CallRef(report_path(call_id), 1),
        report=report,
        live_transcript=[segment],
        chosen=TranscriptSource.LIVE,
    )


def run_analyses(fields: list[str], **script: str) -> tuple[dict, list]:
    call_id = new_call_id(STARTED)
    llm = ScriptedLLM(base_url="http://unused/v1", model="m", max_attempts=1, reads_do_not_call=False, **script)
    with tempfile.TemporaryDirectory() as campaigns_dir:
        write_catalog(Path(campaigns_dir), campaign(id="billing", extracted_fields=fields))
        events = list(
            call_analyses(
                dg.build_asset_context(),
                call_transcripts={call_id: transcribed(call_id)},
                call_llm=llm,
                redaction=RedactionSettings(),
                campaign_catalog=CampaignCatalog(directory=campaigns_dir),
            )
        )
    output = next(e for e in events if isinstance(e, dg.Output))
    return output.value, events


def test_the_llms_outputs_are_redacted_before_they_are_stored() -> None:
    results, _ = run_analyses(["card_cvv", "card_expiry", "security_code"], reply=LEAKY)
    (analyzed,) = results.values()
    assert analyzed.status is AnalysisStatus.OK
    stored = analyzed.analysis.model_dump_json()
    assert not MUST_NOT_APPEAR.search(stored), stored
    assert "[REDACTED CARD]" in analyzed.analysis.summary
    assert analyzed.analysis.extracted_fields["card_cvv"].startswith("[REDACTED")


def test_a_failure_reason_holding_pii_is_redacted_in_the_record_and_metadata() -> None:
    # A server refusing the request quotes the prompt back in its error message.
    refusal = "prompt too long: 'caller: it is 4111 1111 1111 1111, cvv 731, social 123-45-6789 ...'"
    results, events = run_analyses([], refusal=refusal)
    (analyzed,) = results.values()
    assert analyzed.status is AnalysisStatus.FAILED
    everything = " ".join([analyzed.error or ""] + [repr(e) for e in events])
    assert not MUST_NOT_APPEAR.search(everything), everything


@pytest.mark.parametrize("value", [None, True, 3, ["731", "4111 1111 1111 1111"], {"cvv": "731"}])
def test_redact_analysis_keeps_non_text_values_and_walks_lists(value) -> None:
    from orchestration.defs.postcall.analysis import parse_analysis

    analysis = parse_analysis(LEAKY, ("card_cvv", "card_expiry", "security_code"))
    analysis.extracted_fields["cvv_codes"] = value
    redacted = redact_analysis(analysis)
    assert not MUST_NOT_APPEAR.search(redacted.model_dump_json())
    if value is None or isinstance(value, bool):
        assert redacted.extracted_fields["cvv_codes"] is value
