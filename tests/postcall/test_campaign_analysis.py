"""Post-call judges a campaign call by its campaign's own definition (callcenter/campaign.py),
read from the same catalog dialing reads: the goal and the extracted fields reach the model."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import dagster as dg
import pytest

from callcenter.ids import new_call_id
from callcenter.record import AnalysisStatus
from orchestration.defs.postcall import call_analyses
from orchestration.defs.postcall.analysis import CallLLM
from orchestration.defs.postcall.resources import RedactionSettings
from orchestration.resources.campaigns import LOCAL_CAMPAIGNS_DIR, CampaignCatalog
from tests.dialing.conftest import campaign, write_catalog
from tests.postcall.test_analysis_redaction import STARTED, transcribed

REPLY = {
    "summary": "The caller asked about their bill.",
    "disposition": "answered",
    "sentiment": "neutral",
    "customer_intent": "ask about a bill",
    "action_items": [],
    "follow_up_needed": False,
    "goal_achieved": False,
    "do_not_call_requested": False,
}


REQUESTS: list[dict] = []  # what CapturingLLM was asked (a resource's own fields are copied config)


class CapturingLLM(CallLLM):
    """An endpoint that records each request and answers with the fields the schema asks for."""

    def client(self):  # noqa: ANN201
        def create(**kw):  # noqa: ANN202
            REQUESTS.append(kw)
            fields = kw["response_format"]["json_schema"]["schema"]["$defs"]["ExtractedFields"].get("required", [])
            content = json.dumps({**REPLY, "extracted_fields": dict.fromkeys(fields)})
            return SimpleNamespace(
                choices=[SimpleNamespace(message=SimpleNamespace(content=content), finish_reason="stop")]
            )

        return SimpleNamespace(chat=SimpleNamespace(completions=SimpleNamespace(create=create)))


def _analyse(catalog: CampaignCatalog, llm: CallLLM) -> list:
    call_id = new_call_id(STARTED)  # campaign_id "billing"
    return list(
        call_analyses(
            dg.build_asset_context(),
            call_transcripts={call_id: transcribed(call_id)},
            call_llm=llm,
            redaction=RedactionSettings(),
            campaign_catalog=catalog,
        )
    )


def _llm() -> CapturingLLM:
    REQUESTS.clear()
    return CapturingLLM(base_url="http://unused/v1", model="m", max_attempts=1)


def test_the_campaigns_goal_and_fields_reach_the_model(tmp_path: Path) -> None:
    write_catalog(tmp_path, campaign(id="billing", goal="the caller settles the bill", extracted_fields=["due_date"]))
    llm = _llm()
    events = _analyse(CampaignCatalog(directory=str(tmp_path)), llm)
    (request,) = REQUESTS
    prompt = request["messages"][-1]["content"]
    assert "the caller settles the bill" in prompt and "due_date" in prompt
    output = next(e for e in events if isinstance(e, dg.Output))
    (analysed,) = output.value.values()
    assert analysed.status is AnalysisStatus.OK and set(analysed.analysis.extracted_fields) == {"due_date"}
    assert output.metadata["campaigns_not_in_catalog"].value == []


def test_a_campaign_gone_from_the_catalog_is_analysed_without_goal_and_named(tmp_path: Path) -> None:
    write_catalog(tmp_path, campaign(id="renewals"))
    llm = _llm()
    events = _analyse(CampaignCatalog(directory=str(tmp_path)), llm)
    assert "Campaign goal: none" in REQUESTS[0]["messages"][-1]["content"]
    output = next(e for e in events if isinstance(e, dg.Output))
    assert output.metadata["campaigns_not_in_catalog"].value == ["billing"]


def test_an_unreadable_catalog_fails_the_step_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "billing.yaml").write_text("id: billing\npersona: [not, a, name]\n")
    with pytest.raises(dg.Failure, match=r"campaign catalog cannot be read.*billing\.yaml"):
        _analyse(CampaignCatalog(directory=str(tmp_path)), _llm())


def test_the_demo_calls_campaign_is_defined_with_its_goal() -> None:
    """devstack's demo calls name recall-2026-q4: the local stack's analyses judge them by its goal."""
    recall = CampaignCatalog(directory=str(LOCAL_CAMPAIGNS_DIR)).load()["recall-2026-q4"].campaign
    assert recall.goal and recall.extracted_fields == ("appointment_time", "callback_time")
