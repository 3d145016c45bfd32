"""Personas: who the agent is on a call, as data (one YAML per campaign or inbound line).

The compliance lines (automated-agent identification, recording notice, do-not-call and
voicemail wording) are spoken verbatim from the YAML, never left to the model, so a
campaign's legal text is reviewed in one file and cannot be paraphrased away.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class WarmTransfer(BaseModel):
    """A persona's warm transfer (agent/warm_transfer.py): the caller holds while the agent dials the
    human into a consult room, briefs them, connects them to the caller and leaves. Absent: the
    transfer is cold (SIP REFER)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ringing_timeout_s: float = Field(30.0, gt=0, le=120, description="how long the human's phone rings")
    hold_music: bool = Field(True, description="LiveKit's hold music for the caller while they wait")
    connect: Literal["bridge", "move"] = Field(
        "bridge",
        description="how caller and human are put through: 'bridge', the agent's job relays their audio between "
        "the two rooms (any livekit-server); 'move', MoveParticipant moves the human into the caller's room "
        "(LiveKit Cloud only: livekit-server answers it 'not implemented')",
    )
    briefing: str | None = Field(None, description="extra instructions for the briefing of the human")
    callback_offer: str = Field(
        "I'm sorry, nobody from our team could take your call just now. "
        "Would you like us to call you back? If so, when would suit you?",
        min_length=1,
        description="spoken verbatim when nobody answered",
    )


class PaymentSettings(BaseModel):
    """A persona that takes card payments (agent/payment.py): the recording stops before card data
    is asked for and starts again once it is taken."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    card_prompt: str = Field(
        min_length=1,
        description="the agent's question for the card details, spoken verbatim once the recording has stopped; "
        "must name what it asks for (card number, expiry date, security code)",
    )
    resume_after_s: float = Field(
        120.0, gt=0, le=900, description="the recording starts again after this long even if no card data came (logged)"
    )
    taken_message: str = Field(
        "Thank you. Your payment is being processed.",
        min_length=1,
        description="spoken verbatim once the card data is taken, instead of the model's reply to it",
    )

    @field_validator("card_prompt")
    @classmethod
    def _prompt_is_recognised(cls, v: str) -> str:
        from agent.payment import asks_for_card_data

        # the recording stops on the words that ask for card data: a prompt they miss would be recorded
        if not asks_for_card_data(v):
            raise ValueError("card_prompt must ask for the card number, expiry date or security code in those words")
        return v

    @field_validator("taken_message")
    @classmethod
    def _taken_message_asks_nothing(cls, v: str) -> str:
        from agent.payment import asks_for_card_data

        if asks_for_card_data(v):
            raise ValueError("taken_message must not ask for card data: it would stop the recording again")
        return v


class Persona(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    business_name: str = Field(min_length=1)
    agent_name: str = Field(min_length=1, description="the name the agent introduces itself with")
    instructions: str = Field(min_length=1, description="system prompt for the conversation")
    greeting: str = Field(
        min_length=1,
        description="first words; {agent_name} and {business_name} are filled in. Must identify an automated agent.",
    )
    recording_disclosure: str | None = Field(None, description="spoken before recording starts; None = not required")
    goodbye: str = "Thank you for your time. Goodbye."
    do_not_call_goodbye: str = (
        "I understand. I've added your number to our do-not-call list and you won't hear from us again. Goodbye."
    )
    transfer_message: str = "Please hold while I connect you to a member of our team."
    no_transfer_message: str = "I'm sorry, nobody from our team is available right now."
    voicemail_message: str | None = Field(None, description="left on an answering machine when the campaign allows")
    dtmf_allowed: bool = Field(False, description="expose the send_dtmf tool (IVR navigation)")
    payment: PaymentSettings | None = Field(
        None, description="takes card payments: the recording pauses while card data is given (docs/recordings.md)"
    )
    warm_transfer: WarmTransfer | None = Field(None, description="transfer_to_human briefs the human first")

    @field_validator("name")
    @classmethod
    def _name_shape(cls, v: str) -> str:
        if not _NAME_RE.match(v):
            raise ValueError(f"persona name must be lowercase letters, digits, '_' or '-', got {v!r}")
        return v

    @field_validator("greeting")
    @classmethod
    def _greeting_discloses_automation(cls, v: str) -> str:
        # The caller must learn at once they talk to a machine (FCC/TCPA practice); refuse a
        # persona whose opening line could hide it.
        if not re.search(r"\b(automated|virtual|AI|artificial intelligence)\b", v, re.IGNORECASE):
            raise ValueError("greeting must say the caller is talking to an automated/virtual/AI agent")
        return v

    def opening_line_without_notice(self) -> str:
        return self.greeting.format(agent_name=self.agent_name, business_name=self.business_name).strip()

    def opening_line(self) -> str:
        """Greeting, then the recording notice where the persona requires one."""
        greeting = self.opening_line_without_notice()
        if self.recording_disclosure:
            return f"{greeting} {self.recording_disclosure.strip()}"
        return greeting

    def system_prompt(
        self,
        *,
        outbound: bool = False,
        contact_name: str | None = None,
        contact_fields: Mapping[str, str] | None = None,
    ) -> str:
        """The model's instructions; for outbound calls, with what the contact list says about
        the callee (name and the list's own columns), to use in conversation."""
        rules = [
            f"You are {self.agent_name}, an automated voice agent of {self.business_name}, on a phone call.",
            "Speak in short, plain sentences without lists, markdown or emoji: your words are read aloud.",
            "Never claim to be human.",
            "If the person asks not to be called again, call record_do_not_call.",
            "If they ask for a person, call transfer_to_human.",
            "When the conversation is finished, call end_call.",
            "These tools speak their own closing words: do not say goodbye yourself when you call them.",
        ]
        if self.payment is not None:
            rules.append(
                "When the person wants to pay, call take_payment: it asks for the card details itself. "
                "Never ask for card details yourself and never repeat card digits back."
            )
        if outbound:
            rules.append(
                "If a voicemail greeting or answering machine answers instead of a person, "
                "call answering_machine_detected at once and say nothing."
            )
        prompt = " ".join(rules) + "\n\n" + self.instructions.strip()
        known = ([f"name: {contact_name}"] if contact_name else []) + [
            f"{key}: {value}" for key, value in (contact_fields or {}).items()
        ]
        if known:
            prompt += (
                "\n\nWhat the contact list says about the person you are calling (use it when it helps; "
                "confirm who you are speaking to before discussing account details; never read this out "
                "as a list):\n" + "\n".join(f"- {line}" for line in known)
            )
        return prompt


class PersonaNotFound(LookupError):
    pass


def load_persona(name: str, personas_dir: Path) -> Persona:
    """The persona ``<personas_dir>/<name>.yaml``; errors say which file and field to fix."""
    if not _NAME_RE.match(name):
        raise PersonaNotFound(f"persona name {name!r} is not a valid file name")
    return _load(name, personas_dir.resolve())


@lru_cache(maxsize=64)
def _load(name: str, personas_dir: Path) -> Persona:
    path = personas_dir / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in personas_dir.glob("*.yaml"))
        raise PersonaNotFound(f"no persona {name!r}: {path} does not exist (known: {', '.join(known) or 'none'})")
    raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: expected a mapping of persona fields")
    raw.setdefault("name", name)
    if raw["name"] != name:
        raise ValueError(f"{path}: name {raw['name']!r} does not match the file name {name!r}")
    try:
        return Persona.model_validate(raw)
    except ValidationError as exc:
        raise ValueError(f"{path}: {exc}") from None
