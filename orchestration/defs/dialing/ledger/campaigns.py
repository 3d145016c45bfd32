"""A campaign's operator state (active, paused, stopped) and why: ``orchestration/defs/dialing/controls.py``
sets it, the planner and every dial read it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from orchestration.defs.dialing.ledger.sql import LedgerSql, _ts


class CampaignState(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    STOPPED = "stopped"


class CampaignStates(LedgerSql):
    """Set and read a campaign's state; a campaign never controlled is active."""

    def set_campaign_state(self, campaign_id: str, state: CampaignState, reason: str, at: datetime) -> None:
        with self.transaction() as cur:
            self._exec(
                cur,
                "INSERT INTO campaign_controls (campaign_id, state, reason, updated_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (campaign_id) DO UPDATE SET state = excluded.state, reason = excluded.reason, "
                "updated_at = excluded.updated_at",
                (campaign_id, state.value, reason, _ts(at)),
            )

    def campaign_state(self, campaign_id: str) -> tuple[CampaignState, str | None]:
        with self.transaction() as cur:
            row = self._exec(
                cur, "SELECT state, reason FROM campaign_controls WHERE campaign_id = ?", (campaign_id,)
            ).fetchone()
        return (CampaignState(row[0]), row[1]) if row else (CampaignState.ACTIVE, None)
