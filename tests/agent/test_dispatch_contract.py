"""callcenter.dispatch.OutboundCallRequest: the job metadata dialing hands the agent."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from callcenter.dispatch import OutboundCallRequest, VoicemailPolicy, parse_dispatch
from callcenter.ids import new_call_id

BASE = {
    "phone_number": "+14155550123",
    "campaign_id": "plan-renewal",
    "contact_id": "c-1",
    "attempt_id": "a-1",
    "persona": "plan_renewal",
}


def test_round_trips_through_job_metadata_json() -> None:
    request = OutboundCallRequest(call_id=new_call_id(), voicemail_policy="leave_message", **BASE)
    parsed = parse_dispatch(request.model_dump_json())
    assert parsed == request and parsed.voicemail_policy is VoicemailPolicy.LEAVE_MESSAGE
    assert parsed.recording_disclosure is True  # disclosure is the safe default


@pytest.mark.parametrize("number", ["4155550123", "+0155550123", "+1 415 555 0123", "+1415", "tel:+14155550123"])
def test_rejects_numbers_that_are_not_e164(number: str) -> None:
    with pytest.raises(ValidationError, match="E.164"):
        OutboundCallRequest(call_id=new_call_id(), **{**BASE, "phone_number": number})


@pytest.mark.parametrize(
    ("target", "uri"),
    [("+14155550100", "tel:+14155550100"), ("sip:queue@pbx.example.com", "sip:queue@pbx.example.com"), (None, None)],
)
def test_transfer_target_becomes_a_sip_refer_uri(target: str | None, uri: str | None) -> None:
    request = OutboundCallRequest(call_id=new_call_id(), transfer_number=target, **BASE)
    assert request.sip_transfer_to == uri


def test_rejects_a_room_name_that_is_not_a_call_id() -> None:
    with pytest.raises(ValidationError, match="call-<uuid7>"):
        OutboundCallRequest(call_id="room-1", **BASE)


def test_rejects_unknown_fields_so_typos_do_not_pass_silently() -> None:
    raw = json.dumps({"call_id": new_call_id(), **BASE, "voicemail": "leave"})
    with pytest.raises(ValidationError, match="voicemail"):
        parse_dispatch(raw)


def test_empty_metadata_says_what_is_missing() -> None:
    with pytest.raises(ValueError, match="OutboundCallRequest"):
        parse_dispatch("  ")


def test_contact_columns_reach_the_agent_as_text() -> None:
    request = OutboundCallRequest(
        call_id=new_call_id(),
        contact_name="Ada Lovelace",
        contact_fields={"policy_number": "P-1001", "renewal date": 20261201, "empty": ""},
        **BASE,
    )
    parsed = parse_dispatch(request.model_dump_json())
    assert parsed.contact_name == "Ada Lovelace"
    assert parsed.contact_fields == {"policy_number": "P-1001", "renewal date": "20261201"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({f"f{i}": "x" for i in range(33)}, "at most 32 contact fields"),
        ({"notes": "n" * 501}, "longer than 500 characters"),
        ({"bad\nname": "x"}, "must be 1-64 letters"),
    ],
)
def test_contact_fields_the_agent_cannot_take_are_refused(fields: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OutboundCallRequest(call_id=new_call_id(), contact_fields=fields, **BASE)
