"""Campaign definitions, the one home of the concept: one YAML file per campaign under the campaigns directory.

A campaign says who to call (a contact list), as whom (persona, trunk, caller id), when
(calling window in the contact's local time), how often (max attempts, backoff per
outcome), how many at once (max concurrent calls), which do-not-call registries gate it,
and what a call should achieve (the goal and the fields post-call extracts). Dialing,
the agent (through the dispatch metadata it builds from here) and post-call's analysis
all read this model.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from callcenter.dispatch import E164_RE, VoicemailPolicy
from callcenter.outcomes import CallOutcome

# Never call before 08:00 or at/after 21:00 in the callee's local time (TCPA), whatever a
# campaign's own window says.
LEGAL_EARLIEST = time(8, 0)
LEGAL_LATEST = time(21, 0)

_FIELD_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# Outcomes after which a contact is never dialled again by the same campaign.
TERMINAL_OUTCOMES = frozenset(
    {
        CallOutcome.ANSWERED,
        CallOutcome.TRANSFERRED,
        CallOutcome.DO_NOT_CALL,
        CallOutcome.WRONG_NUMBER,
        CallOutcome.DECLINED,
    }
)

DEFAULT_BACKOFF = {
    CallOutcome.BUSY: timedelta(minutes=15),
    CallOutcome.NO_ANSWER: timedelta(hours=2),
    CallOutcome.VOICEMAIL: timedelta(hours=24),
    CallOutcome.FAILED: timedelta(minutes=30),
}


class CallingWindow(BaseModel):
    """Local-time window in which the campaign may place calls, clipped to 08:00-21:00."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = LEGAL_EARLIEST
    end: time = LEGAL_LATEST
    days: tuple[str, ...] = WEEKDAYS[:5]

    @field_validator("days")
    @classmethod
    def _known_days(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [d for d in v if d not in WEEKDAYS]
        if bad:
            raise ValueError(f"unknown weekday(s) {bad}; use {', '.join(WEEKDAYS)}")
        return v

    @model_validator(mode="after")
    def _non_empty(self) -> CallingWindow:
        if self.effective_start >= self.effective_end:
            raise ValueError(
                f"calling window {self.start:%H:%M}-{self.end:%H:%M} is empty once clipped to the legal "
                f"{LEGAL_EARLIEST:%H:%M}-{LEGAL_LATEST:%H:%M}"
            )
        return self

    @property
    def effective_start(self) -> time:
        return max(self.start, LEGAL_EARLIEST)

    @property
    def effective_end(self) -> time:
        return min(self.end, LEGAL_LATEST)

    @property
    def weekday_numbers(self) -> frozenset[int]:
        return frozenset(WEEKDAYS.index(d) for d in self.days)


class Campaign(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    persona: str = Field(min_length=1, description="agent persona/script: agent/personas/<persona>.yaml")
    contacts: str = Field(description="contact list: a path (relative to the campaign file) or gs://bucket/object")
    default_region: str = Field("US", description="region for numbers written without a country code")
    outbound_trunk: str | None = None
    caller_id: str | None = None
    transfer_number: str | None = None
    calling_window: CallingWindow = CallingWindow()
    max_attempts: int = Field(3, ge=1, le=20)
    retry_backoff: dict[CallOutcome, timedelta] = Field(default_factory=lambda: dict(DEFAULT_BACKOFF))
    max_concurrent_calls: int = Field(2, ge=1)
    voicemail_policy: VoicemailPolicy = VoicemailPolicy.HANG_UP
    voicemail_message: str | None = None
    recording_disclosure: bool = True
    ring_timeout_s: float = Field(30.0, gt=0, le=120)
    dnc_registry: list[str] = Field(default_factory=list, description="operator-supplied DNC registry files")
    goal: str | None = Field(
        None, min_length=1, description="what a successful call achieves; post-call judges goal_achieved by it"
    )
    extracted_fields: tuple[str, ...] = Field(
        (), description="fields post-call extracts from each call's transcript (null when not mentioned)"
    )

    @field_validator("extracted_fields")
    @classmethod
    def _field_names(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        bad = [name for name in v if not _FIELD_NAME_RE.match(name)]
        if bad:
            raise ValueError(f"extracted field names must be snake_case identifiers, got {bad}")
        if len(set(v)) != len(v):
            raise ValueError(f"extracted field named twice: {sorted(n for n in set(v) if v.count(n) > 1)}")
        return v

    @field_validator("caller_id")
    @classmethod
    def _caller_id_e164(cls, v: str | None) -> str | None:
        if v is not None and not E164_RE.match(v):
            raise ValueError(f"caller_id must be E.164 (e.g. +14155550100), got {v!r}")
        return v

    @field_validator("retry_backoff")
    @classmethod
    def _retryable_only(cls, v: dict[CallOutcome, timedelta]) -> dict[CallOutcome, timedelta]:
        terminal = sorted(o.value for o in v if o in TERMINAL_OUTCOMES)
        if terminal:
            raise ValueError(f"retry_backoff names final outcomes {terminal}: those contacts are never redialled")
        return v

    @model_validator(mode="after")
    def _dispatchable(self) -> Campaign:
        """Every field the agent receives must pass its contract now, not at the first dial."""
        from callcenter.dispatch import OutboundCallRequest
        from callcenter.ids import new_call_id

        try:
            OutboundCallRequest(
                call_id=new_call_id(),
                phone_number="+12125550100",
                campaign_id=self.id,
                contact_id="probe",
                attempt_id="probe",
                persona=self.persona,
                sip_trunk_id=self.outbound_trunk,
                caller_id=self.caller_id,
                transfer_number=self.transfer_number,
                voicemail_policy=self.voicemail_policy,
                voicemail_message=self.voicemail_message,
                recording_disclosure=self.recording_disclosure,
                ring_timeout_s=self.ring_timeout_s,
            )
        except ValidationError as e:
            problems = "; ".join(f"{'.'.join(map(str, err['loc']))}: {err['msg']}" for err in e.errors())
            raise ValueError(f"the agent would reject this campaign's dispatch metadata: {problems}") from None
        return self

    def backoff_for(self, outcome: CallOutcome) -> timedelta | None:
        """Wait before the next attempt after ``outcome``; None: never retry."""
        if outcome in TERMINAL_OUTCOMES:
            return None
        return self.retry_backoff.get(outcome)


class CampaignFile(BaseModel):
    campaign: Campaign
    path: Path

    def resolve(self, location: str) -> str:
        """A contact list or registry location relative to the campaign file, unless absolute or gs://."""
        if location.startswith("gs://") or Path(location).is_absolute():
            return location
        return str((self.path.parent / location).resolve())


class CampaignError(ValueError):
    pass


def load_campaign(path: Path) -> CampaignFile:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CampaignError(f"cannot read campaign {path}: {e}") from e
    if not isinstance(raw, dict):
        raise CampaignError(f"campaign {path} must be a YAML mapping of campaign fields")
    try:
        return CampaignFile(campaign=Campaign.model_validate(raw), path=path)
    except ValidationError as e:
        raise CampaignError(f"campaign {path} is invalid:\n{e}") from e


def load_catalog(directory: Path) -> dict[str, CampaignFile]:
    """Every ``*.yaml`` campaign in ``directory``; ids must be unique."""
    if not directory.is_dir():
        raise CampaignError(f"campaigns directory {directory} does not exist: set CALLCENTER_CAMPAIGNS_DIR")
    found: dict[str, CampaignFile] = {}
    for path in sorted(directory.glob("*.y*ml")):
        cf = load_campaign(path)
        if cf.campaign.id in found:
            raise CampaignError(
                f"campaign id {cf.campaign.id!r} is defined twice: {found[cf.campaign.id].path} and {path}"
            )
        found[cf.campaign.id] = cf
    return found
