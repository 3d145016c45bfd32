"""Outbound job metadata: what the dialing pipeline hands the agent for one dial attempt.

Dialing creates the room ``call_id`` and an explicit agent dispatch whose ``metadata`` is
``OutboundCallRequest.model_dump_json()``; the agent validates it with ``parse_dispatch``
before it dials. Stable contract: add optional fields only.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from callcenter.ids import is_call_id

E164_RE = re.compile(r"^\+[1-9][0-9]{6,14}$")

# The agent's registered name; SIP dispatch rules (inbound) and agent dispatches
# (outbound) name it explicitly so no other worker takes these jobs.
AGENT_NAME = "call-center-agent"

# The outbound trunk's name in LiveKit. LiveKit gives the trunk a generated id (ST_...): the
# rollout keeps the trunk by this name and the agent looks the id up by it when it dials, so
# no one copies the id from one to the other.
OUTBOUND_TRUNK_NAME = "twilio-outbound"
# The longest a call may last: the agent's MAX_CALL_DURATION_S default (the SIP dial's limit, and the
# agent ConfigMap's value); post-call transcribes no recording longer than this plus Egress' tail.
MAX_CALL_DURATION_S = 1800


class VoicemailPolicy(StrEnum):
    """What the agent does when an answering machine picks up."""

    LEAVE_MESSAGE = "leave_message"  # speak ``voicemail_message`` then hang up
    HANG_UP = "hang_up"  # hang up without speaking


def _e164(value: str | None) -> str | None:
    if value is not None and not E164_RE.match(value):
        raise ValueError(f"phone number must be E.164 (+ and 7-15 digits, e.g. +14155550123), got {value!r}")
    return value


MAX_CONTACT_FIELDS = 32
MAX_FIELD_CHARS = 500
FIELD_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ \-]{0,63}")


class OutboundCallRequest(BaseModel):
    """One outbound dial attempt, as agent dispatch metadata (JSON)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_id: str = Field(description="room name, call-<uuid7>; also the dial ledger key")
    phone_number: str = Field(description="callee, E.164")
    campaign_id: str = Field(min_length=1)
    contact_id: str = Field(min_length=1)
    attempt_id: str = Field(min_length=1, description="dial ledger row; unique per attempt")
    persona: str = Field(min_length=1, description="persona/script name: agent/personas/<persona>.yaml")
    sip_trunk_id: str | None = Field(
        None, description="outbound trunk id; None = the agent's (the trunk named SIP_OUTBOUND_TRUNK_NAME)"
    )
    caller_id: str | None = Field(None, description="E.164 number presented to the callee; None = the trunk's")
    transfer_number: str | None = Field(None, description="E.164 or sip: URI of the human queue; None = no transfer")
    voicemail_policy: VoicemailPolicy = VoicemailPolicy.HANG_UP
    voicemail_message: str | None = Field(None, description="spoken when voicemail_policy is leave_message")
    recording_disclosure: bool = Field(True, description="speak the campaign's recording notice before recording")
    ring_timeout_s: float = Field(30.0, gt=0, le=120, description="give up (no_answer) after this long ringing")
    contact_name: str | None = Field(None, max_length=200, description="the callee's name from the contact list")
    dial_by: datetime | None = Field(
        None,
        description="UTC instant after which the agent must not place the call: the end of the contact's "
        "calling window, or a dispatch that waited too long for a free worker; None = no limit",
    )
    contact_fields: dict[str, str] = Field(
        default_factory=dict,
        description="the contact list's own columns (policy number, renewal date, ...) for the script; "
        f"at most {MAX_CONTACT_FIELDS} of up to {MAX_FIELD_CHARS} characters each",
    )

    @field_validator("dial_by")
    @classmethod
    def _dial_by_aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("dial_by must carry a UTC offset")
        return v

    @field_validator("call_id")
    @classmethod
    def _call_id_shape(cls, v: str) -> str:
        if not is_call_id(v):
            raise ValueError(f"call_id must be call-<uuid7>, got {v!r}")
        return v

    @field_validator("phone_number", "caller_id")
    @classmethod
    def _phone_e164(cls, v: str | None) -> str | None:
        return _e164(v)

    @field_validator("transfer_number")
    @classmethod
    def _transfer_target(cls, v: str | None) -> str | None:
        if v is None or v.startswith(("sip:", "tel:")):
            return v
        return _e164(v)

    @field_validator("contact_fields", mode="before")
    @classmethod
    def _contact_fields(cls, v: object) -> object:
        if not isinstance(v, dict):
            return v
        if len(v) > MAX_CONTACT_FIELDS:
            raise ValueError(f"at most {MAX_CONTACT_FIELDS} contact fields reach the agent, got {len(v)}")
        out: dict[str, str] = {}
        for key, value in v.items():
            if not isinstance(key, str) or not FIELD_NAME.fullmatch(key):
                raise ValueError(f"contact field name {key!r} must be 1-64 letters, digits, spaces, '_' or '-'")
            if value is None or value == "":
                continue
            text = str(value)
            if len(text) > MAX_FIELD_CHARS:
                raise ValueError(f"contact field {key!r} is longer than {MAX_FIELD_CHARS} characters")
            out[key] = text
        return out

    @field_validator("voicemail_message")
    @classmethod
    def _message_not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("voicemail_message must not be blank; leave it out to use the persona's")
        return v

    @property
    def sip_transfer_to(self) -> str | None:
        """The transfer target as LiveKit's TransferSIPParticipant wants it (a tel:/sip: URI)."""
        if self.transfer_number is None or self.transfer_number.startswith(("sip:", "tel:")):
            return self.transfer_number
        return f"tel:{self.transfer_number}"


def parse_dispatch(metadata: str) -> OutboundCallRequest:
    """Validate job metadata; raises ValueError naming every bad field."""
    if not metadata or not metadata.strip():
        raise ValueError("outbound job has no metadata: the dispatch must carry an OutboundCallRequest JSON")
    return OutboundCallRequest.model_validate_json(metadata)
