"""Personas as data: every shipped YAML loads, and compliance wording is enforced."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.personas import Persona, PersonaNotFound, load_persona
from agent.settings import PERSONAS_DIR

SHIPPED = sorted(p.stem for p in PERSONAS_DIR.glob("*.yaml"))


def test_the_inbound_line_and_a_campaign_are_shipped() -> None:
    assert {"inbound_support", "plan_renewal"} <= set(SHIPPED)


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_persona_loads_and_opens_with_an_automated_agent(name: str) -> None:
    persona = load_persona(name, PERSONAS_DIR)
    opening = persona.opening_line()
    assert persona.business_name in opening and persona.agent_name in opening
    assert "{" not in opening  # placeholders filled in
    assert persona.business_name in persona.system_prompt()


def test_a_greeting_that_hides_the_automation_is_refused(tmp_path: Path) -> None:
    (tmp_path / "sneaky.yaml").write_text(
        "business_name: Acme\nagent_name: Sam\ninstructions: sell\ngreeting: Hi, this is Sam from Acme!\n"
    )
    with pytest.raises(ValueError, match="automated"):
        load_persona("sneaky", tmp_path)


def test_unknown_persona_names_the_known_ones(tmp_path: Path) -> None:
    (tmp_path / "known.yaml").write_text(
        "business_name: Acme\nagent_name: Sam\ninstructions: help\ngreeting: Hi, I am an automated assistant.\n"
    )
    with pytest.raises(PersonaNotFound, match="known: known"):
        load_persona("missing", tmp_path)
    with pytest.raises(PersonaNotFound):
        load_persona("../etc/passwd", tmp_path)


def test_unknown_fields_are_errors_that_name_the_file(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text(
        "business_name: Acme\nagent_name: Sam\ninstructions: help\ngreeting: I am a virtual agent.\ngreting: x\n"
    )
    with pytest.raises(ValueError, match=r"typo\.yaml"):
        load_persona("typo", tmp_path)


def test_recording_notice_follows_the_greeting_only_when_set() -> None:
    base = {
        "name": "p",
        "business_name": "Acme",
        "agent_name": "Sam",
        "instructions": "x",
        "greeting": "This is {agent_name}, an automated agent of {business_name}.",
    }
    assert Persona(**base).opening_line() == "This is Sam, an automated agent of Acme."
    noticed = Persona(**base, recording_disclosure="This call is recorded.")
    assert noticed.opening_line() == "This is Sam, an automated agent of Acme. This call is recorded."


def test_an_outbound_prompt_carries_what_the_contact_list_says() -> None:
    persona = load_persona("plan_renewal", PERSONAS_DIR)
    prompt = persona.system_prompt(
        outbound=True, contact_name="Ada Lovelace", contact_fields={"policy_number": "P-1001"}
    )
    assert "- name: Ada Lovelace" in prompt and "- policy_number: P-1001" in prompt
    assert "contact list" not in persona.system_prompt(outbound=True)  # nothing known: no section
