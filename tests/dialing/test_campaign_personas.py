"""Every campaign in campaigns/ names a persona the agent can load: a missing one would make
every dispatched call of the campaign fail in the agent, after the number was dialled."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.personas import PersonaNotFound, load_persona
from callcenter.campaign import load_catalog

REPO_ROOT = Path(__file__).resolve().parents[2]
CAMPAIGNS_DIR = REPO_ROOT / "campaigns"
PERSONAS_DIR = REPO_ROOT / "agent" / "personas"
CATALOG = load_catalog(CAMPAIGNS_DIR)


def test_the_catalog_is_not_empty() -> None:
    assert CATALOG, f"no campaign found under {CAMPAIGNS_DIR}"


@pytest.mark.parametrize("campaign_id", sorted(CATALOG))
def test_every_campaign_names_an_existing_persona(campaign_id: str) -> None:
    campaign = CATALOG[campaign_id].campaign
    persona = load_persona(campaign.persona, PERSONAS_DIR)  # validates it too (greeting discloses automation)
    assert persona.name == campaign.persona


def test_a_missing_persona_is_named() -> None:
    with pytest.raises(PersonaNotFound, match="renewals"):
        load_persona("renewals", PERSONAS_DIR)
