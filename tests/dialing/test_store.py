"""The ledger store on both engines: idempotent reservations, closing, leases, durability."""

from __future__ import annotations

from datetime import timedelta
from types import MappingProxyType

from callcenter.ids import new_call_id
from callcenter.outcomes import CallOutcome
from orchestration.defs.dialing.contacts import Contact
from orchestration.defs.dialing.ledger import Attempt, AttemptStatus, CampaignState, DialStore, attempt_key
from tests.dialing.conftest import WEDNESDAY_15Z, ny_contacts, open_target


def attempt(n: int = 1, contact: str = "c-0001") -> Attempt:
    call_id = new_call_id()
    return Attempt(
        attempt_id=f"att-{call_id[5:]}",
        idempotency_key=attempt_key("renewals", contact, n),
        campaign_id="renewals",
        contact_id=contact,
        attempt_number=n,
        phone_number="+12125550001",
        call_id=call_id,
        status=AttemptStatus.RESERVED,
        reserved_at=WEDNESDAY_15Z,
    )


def test_an_attempt_key_is_reserved_once_across_connections(store: DialStore, ledger_target: dict[str, str]) -> None:
    other = open_target(ledger_target)  # a second run, its own connection
    try:
        assert store.reserve(attempt())
        assert not other.reserve(attempt())  # same key, new call id: refused
        assert len(other.attempts()) == 1
    finally:
        other.close()


def test_cancel_frees_the_key_and_is_not_an_attempt(store: DialStore) -> None:
    first = attempt()
    store.reserve(first)
    store.cancel(first.attempt_id, "dispatch refused", WEDNESDAY_15Z)
    assert store.history("renewals") == {}
    assert store.reserve(attempt())  # the same attempt number can be taken again


def test_close_is_idempotent_and_history_reflects_it(store: DialStore) -> None:
    a = attempt()
    store.reserve(a)
    store.mark_dispatched(a.attempt_id, "AD_1", WEDNESDAY_15Z)
    assert store.live_counts() == {"renewals": 1}
    closed_at = WEDNESDAY_15Z + timedelta(minutes=2)
    assert store.close_attempt(a.call_id, CallOutcome.BUSY, closed_at, sip_status_code=486)
    assert not store.close_attempt(a.call_id, CallOutcome.ANSWERED, closed_at)  # a late duplicate report
    h = store.history("renewals")["c-0001"]
    assert (h.attempts, h.open, h.last_outcome, h.last_closed_at) == (1, False, CallOutcome.BUSY, closed_at)
    assert store.live_counts() == {}
    assert store.outcome_counts("renewals") == {"busy": 1}
    row = store.attempt_by_call(a.call_id)
    assert row is not None and row.sip_status_code == 486 and row.dispatch_id == "AD_1"


def test_lease_excludes_a_second_holder_until_it_expires(store: DialStore) -> None:
    assert store.acquire_lease("tick", "run-a", WEDNESDAY_15Z, ttl_s=60)
    assert not store.acquire_lease("tick", "run-b", WEDNESDAY_15Z + timedelta(seconds=30), ttl_s=60)
    assert store.acquire_lease("tick", "run-b", WEDNESDAY_15Z + timedelta(seconds=61), ttl_s=60)
    store.release_lease("tick", "run-b")
    assert store.acquire_lease("tick", "run-c", WEDNESDAY_15Z + timedelta(seconds=62), ttl_s=60)


def test_contacts_dnc_and_controls_survive_a_reopen(store: DialStore, ledger_target: dict[str, str]) -> None:
    store.replace_contacts("renewals", ny_contacts(3))
    store.add_do_not_call(["+12125550002"], "call", WEDNESDAY_15Z, campaign_id="renewals")
    store.replace_do_not_call_source("registry:a.txt", ["+12125550003", "+12125550002"], WEDNESDAY_15Z)
    store.replace_do_not_call_source("registry:a.txt", ["+12125550003"], WEDNESDAY_15Z)  # re-import replaces
    store.set_campaign_state("renewals", CampaignState.PAUSED, "operator", WEDNESDAY_15Z)
    store.close()
    reopened = open_target(ledger_target)
    try:
        assert [c.contact_id for c in reopened.load_contacts("renewals")] == ["c-0001", "c-0002", "c-0003"]
        assert reopened.load_contacts("renewals", with_fields=True)[0].fields == {"policy": "P-1"}
        assert reopened.do_not_call_numbers() == {"+12125550002", "+12125550003"}
        assert reopened.do_not_call_counts() == {"call": 1, "registry:a.txt": 1}
        assert reopened.campaign_state("renewals") == (CampaignState.PAUSED, "operator")
    finally:
        reopened.close()


def test_a_bad_dsn_names_the_setting_and_hides_the_password(postgres_uri: str) -> None:
    import pytest

    from orchestration.defs.dialing.ledger import PostgresDialStore

    dsn = postgres_uri.replace("postgres:@", "nobody:s3cret-pw@").replace("/postgres?", "/no_such_db?")
    with pytest.raises(ConnectionError, match="CALLCENTER_DIALING_DSN") as err:
        PostgresDialStore(dsn)
    assert "s3cret-pw" not in str(err.value)


def test_a_contact_without_custom_columns_reads_back_with_none(store: DialStore) -> None:
    """Contact.fields defaults to a read-only mapping (MappingProxyType), which json cannot
    encode: it was stored as its repr, a string, and the contact's dial failed building its
    request (dict("{}")). Any mapping reads back as the same dict."""
    bare = Contact("c-0001", "+12125550001", None, ("America/New_York",), "list")
    frozen = Contact(
        "c-0002", "+12125550002", "Ada", ("America/New_York",), "list", MappingProxyType({"policy": "P-2"})
    )
    store.replace_contacts("renewals", [bare, frozen])
    assert store.contact_profile("renewals", "c-0001") == (None, {})
    assert store.contact_profile("renewals", "c-0002") == ("Ada", {"policy": "P-2"})
    assert [c.fields for c in store.load_contacts("renewals", with_fields=True)] == [{}, {"policy": "P-2"}]
