"""The campaign catalog, as a resource: dialing reads who and when to call from it, post-call
the goal and extracted fields to analyse against. The definitions' one home is callcenter/campaign.py."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from callcenter.campaign import CampaignFile, load_catalog

# The campaigns shipped with the repository, for the local stack (its dialing schedule is off).
LOCAL_CAMPAIGNS_DIR = Path(__file__).resolve().parents[2] / "campaigns"


class CampaignCatalog(dg.ConfigurableResource):
    """Campaign YAML files (one per campaign) and any fleet-wide do-not-call registry files."""

    directory: str
    registry_files: list[str] = Field(default_factory=list)

    def load(self) -> dict[str, CampaignFile]:
        return load_catalog(Path(self.directory))
