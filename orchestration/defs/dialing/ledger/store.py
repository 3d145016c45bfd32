"""``DialStore``: the ledger's one Python API, its parts composed; the engines subclass it."""

from __future__ import annotations

from orchestration.defs.dialing.ledger.attempts import Attempts
from orchestration.defs.dialing.ledger.campaigns import CampaignStates
from orchestration.defs.dialing.ledger.contacts import Contacts
from orchestration.defs.dialing.ledger.do_not_call import DoNotCall
from orchestration.defs.dialing.ledger.leases import LeasesAndMarks


class DialStore(Attempts, DoNotCall, Contacts, CampaignStates, LeasesAndMarks):
    """The ledger API. Subclasses supply the connection and the transaction."""
