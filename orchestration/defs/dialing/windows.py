"""Calling windows in the callee's local time.

A contact's time zone is the one in its list row when given; otherwise every zone its
number can be in (``phonenumbers``' geocoding). When a number spans several zones (a
toll-free or non-geographic number, a country with several zones) the contact is inside
the window only if it is inside in *every* candidate zone: never call someone at 07:30
because their number could also be an hour later somewhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from phonenumbers import timezone as pn_timezone

from callcenter.campaign import CallingWindow

UNKNOWN_ZONE = "Etc/Unknown"


def zones_for_number(number: phonenumbers.PhoneNumber) -> tuple[str, ...]:
    """Candidate IANA zones for a parsed number; empty when unknown."""
    zones = tuple(z for z in pn_timezone.time_zones_for_number(number) if z != UNKNOWN_ZONE)
    return tuple(sorted(zones))


@cache
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def is_known_zone(name: str) -> bool:
    try:
        zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def local_times(now: datetime, zones: Iterable[str]) -> list[datetime]:
    if now.tzinfo is None:
        raise ValueError("planning time must be timezone-aware (UTC)")
    return [now.astimezone(zone(z)) for z in zones]


def inside_window(window: CallingWindow, local: datetime) -> bool:
    """08:00 <= local time < 21:00 (clipped campaign window), on one of the campaign's days."""
    if local.weekday() not in window.weekday_numbers:
        return False
    t = local.time().replace(tzinfo=None)
    return window.effective_start <= t < window.effective_end


def window_verdict(window: CallingWindow, now: datetime, zones: tuple[str, ...]) -> tuple[bool, str]:
    """(allowed, explanation). Explanation names the local time(s) that decided it."""
    if not zones:
        return False, "time zone unknown: give a time_zone column for this contact"
    locals_ = local_times(now, zones)
    outside = [lt for lt in locals_ if not inside_window(window, lt)]
    if outside:
        first = outside[0]
        return False, f"{first:%a %H:%M} {first.tzname()} ({first.tzinfo}) outside {_describe(window)}"
    return True, ", ".join(f"{lt:%a %H:%M} {lt.tzname()}" for lt in locals_[:3])


def _describe(window: CallingWindow) -> str:
    return f"{window.effective_start:%H:%M}-{window.effective_end:%H:%M} {'/'.join(window.days)}"


def window_closes(window: CallingWindow, now: datetime, zones: Iterable[str]) -> datetime:
    """When today's window ends in the first of ``zones`` to close it, as a UTC instant."""
    ends = [
        datetime.combine(local.date(), window.effective_end, tzinfo=local.tzinfo).astimezone(UTC)
        for local in local_times(now, zones)
    ]
    if not ends:
        raise ValueError("no time zone: the window's end is unknown")
    return min(ends)
