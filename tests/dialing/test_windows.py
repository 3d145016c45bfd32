"""Calling windows in the callee's local time: the 08:00/21:00 edges, many zones, DST days."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import phonenumbers
import pytest

from callcenter.campaign import CallingWindow
from orchestration.defs.dialing.contacts import normalise_number
from orchestration.defs.dialing.windows import window_verdict

ALL_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
LEGAL = CallingWindow(start="00:00", end="23:59", days=ALL_DAYS)  # clipped to 08:00-21:00


def utc_for_local(zone: str, y: int, mo: int, d: int, h: int, mi: int) -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(zone)).astimezone(UTC)


@pytest.mark.parametrize(
    "zone",
    ["America/New_York", "America/Chicago", "America/Los_Angeles", "Pacific/Honolulu", "Europe/London", "Asia/Kolkata"],
)
@pytest.mark.parametrize(("hh", "mm", "allowed"), [(7, 59, False), (8, 0, True), (20, 59, True), (21, 0, False)])
def test_legal_edges_in_local_time(zone: str, hh: int, mm: int, allowed: bool) -> None:
    now = utc_for_local(zone, 2026, 11, 25, hh, mm)
    assert window_verdict(LEGAL, now, (zone,))[0] is allowed


@pytest.mark.parametrize(
    ("utc", "allowed", "why"),
    [
        # US spring forward, Sunday 2026-03-08: New York is UTC-4 from 02:00 local.
        (datetime(2026, 3, 8, 11, 59, tzinfo=UTC), False, "07:59 EDT"),
        (datetime(2026, 3, 8, 12, 30, tzinfo=UTC), True, "08:30 EDT (a fixed UTC-5 would say 07:30)"),
        (datetime(2026, 3, 9, 0, 59, tzinfo=UTC), True, "20:59 EDT"),
        (datetime(2026, 3, 9, 1, 0, tzinfo=UTC), False, "21:00 EDT (a fixed UTC-5 would say 20:00)"),
        # US fall back, Sunday 2026-11-01: back to UTC-5.
        (datetime(2026, 11, 1, 12, 59, tzinfo=UTC), False, "07:59 EST (a fixed UTC-4 would say 08:59)"),
        (datetime(2026, 11, 1, 13, 0, tzinfo=UTC), True, "08:00 EST"),
        (datetime(2026, 11, 2, 1, 59, tzinfo=UTC), True, "20:59 EST"),
        (datetime(2026, 11, 2, 2, 0, tzinfo=UTC), False, "21:00 EST"),
    ],
)
def test_dst_change_days_new_york(utc: datetime, allowed: bool, why: str) -> None:
    assert window_verdict(LEGAL, utc, ("America/New_York",))[0] is allowed, why


def test_dst_change_day_london() -> None:
    # 2026-03-29: London moves to UTC+1 at 01:00 UTC; 07:30 UTC is 08:30 BST.
    assert window_verdict(LEGAL, datetime(2026, 3, 29, 7, 30, tzinfo=UTC), ("Europe/London",))[0]
    assert not window_verdict(LEGAL, datetime(2026, 3, 29, 6, 59, tzinfo=UTC), ("Europe/London",))[0]


def test_zone_comes_from_the_number_when_not_given() -> None:
    e164, zones, problem = normalise_number("(415) 555-0103", "US")
    assert (e164, zones, problem) == ("+14155550103", ("America/Los_Angeles",), None)
    at_8_pacific = utc_for_local("America/Los_Angeles", 2026, 11, 25, 8, 0)
    assert window_verdict(LEGAL, at_8_pacific, zones)[0]
    assert not window_verdict(LEGAL, utc_for_local("America/Los_Angeles", 2026, 11, 25, 7, 59), zones)[0]


def test_a_number_spanning_zones_must_be_inside_in_all_of_them() -> None:
    _, zones, _ = normalise_number("+1 800 555 0107", "US")
    assert {"America/New_York", "America/Los_Angeles", "Pacific/Honolulu"} <= set(zones)
    noon_new_york = utc_for_local("America/New_York", 2026, 11, 25, 12, 0)  # 07:00 in Los Angeles
    allowed, why = window_verdict(LEGAL, noon_new_york, zones)
    assert not allowed and "outside" in why


def test_unknown_zone_is_never_inside() -> None:
    allowed, why = window_verdict(LEGAL, datetime(2026, 11, 25, 15, 0, tzinfo=UTC), ())
    assert not allowed and "time zone unknown" in why


def test_campaign_window_and_days_narrow_the_legal_one() -> None:
    window = CallingWindow(start="09:30", end="17:00", days=("mon", "tue", "wed", "thu", "fri"))
    ny = ("America/New_York",)
    assert not window_verdict(window, utc_for_local(ny[0], 2026, 11, 25, 9, 29), ny)[0]
    assert window_verdict(window, utc_for_local(ny[0], 2026, 11, 25, 9, 30), ny)[0]
    assert not window_verdict(window, utc_for_local(ny[0], 2026, 11, 25, 17, 0), ny)[0]
    assert not window_verdict(window, utc_for_local(ny[0], 2026, 11, 28, 12, 0), ny)[0]  # Saturday


def test_a_window_outside_the_legal_hours_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty once clipped"):
        CallingWindow(start="21:00", end="23:00")
    assert CallingWindow(start="06:00", end="23:00").effective_start.hour == 8


def test_phonenumbers_zone_table_is_what_we_expect() -> None:
    # Guards the assumption the defaults rely on: 212 is New York only.
    assert phonenumbers.timezone.time_zones_for_number(phonenumbers.parse("+12125550101")) == ("America/New_York",)


def test_a_campaign_the_agent_would_reject_fails_at_load() -> None:
    from callcenter.campaign import Campaign

    base = {"id": "x", "persona": "renewals", "contacts": "x.csv"}
    with pytest.raises(ValueError, match="transfer_number"):
        Campaign.model_validate({**base, "transfer_number": "555-0199"})
    with pytest.raises(ValueError, match="voicemail_message"):
        Campaign.model_validate({**base, "voicemail_message": "  "})
    assert Campaign.model_validate({**base, "transfer_number": "sip:queue@pbx.example"}).transfer_number
