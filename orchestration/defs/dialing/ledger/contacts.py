"""A campaign's loaded contact list, in list order (``orchestration/defs/dialing/contacts.py``
reads and validates the file; this keeps what it loaded, so a tick plans without the file)."""

from __future__ import annotations

import json
from typing import Any

from orchestration.defs.dialing.contacts import Contact
from orchestration.defs.dialing.ledger.sql import LedgerSql


class Contacts(LedgerSql):
    """Replace a campaign's contacts; read them for planning, or one contact's profile for its dial."""

    def replace_contacts(self, campaign_id: str, contacts: list[Contact]) -> None:
        rows = [
            (
                campaign_id,
                c.contact_id,
                i,
                c.phone_number,
                c.name,
                ",".join(c.time_zones),
                c.zone_source,
                json.dumps(dict(c.fields), sort_keys=True, default=str),  # any mapping: the default is read-only
            )
            for i, c in enumerate(contacts)
        ]
        with self.transaction() as cur:
            self._exec(cur, "DELETE FROM campaign_contacts WHERE campaign_id = ?", (campaign_id,))
            self._many(
                cur,
                "INSERT INTO campaign_contacts (campaign_id, contact_id, position, phone_number, name, time_zones, "
                "zone_source, fields) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )

    def load_contacts(self, campaign_id: str, with_fields: bool = False) -> list[Contact]:
        """In list order. Without ``with_fields`` only what planning needs is read (no name, no fields)."""
        cols = "contact_id, phone_number, time_zones" + (", name, zone_source, fields" if with_fields else "")
        with self.transaction() as cur:
            rows = self._exec(
                cur, f"SELECT {cols} FROM campaign_contacts WHERE campaign_id = ? ORDER BY position", (campaign_id,)
            ).fetchall()
        # Few distinct zone lists: parse each once and share the tuple.
        zones = {z: tuple(x for x in z.split(",") if x) for z in {r[2] for r in rows}}
        if with_fields:
            return [Contact(r[0], r[1], r[3], zones[r[2]], r[4], json.loads(r[5])) for r in rows]
        return [Contact(r[0], r[1], None, zones[r[2]], "") for r in rows]

    def contact_profile(self, campaign_id: str, contact_id: str) -> tuple[str | None, dict[str, Any]]:
        """The contact's name and custom columns (what the agent's script may use)."""
        with self.transaction() as cur:
            row = self._exec(
                cur,
                "SELECT name, fields FROM campaign_contacts WHERE campaign_id = ? AND contact_id = ?",
                (campaign_id, contact_id),
            ).fetchone()
        return (row[0], json.loads(row[1])) if row else (None, {})
