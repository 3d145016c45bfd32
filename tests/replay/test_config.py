"""A replay's selection: a range of day partitions or chosen call ids, refused clearly otherwise."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from callcenter.ids import new_call_id
from orchestration.defs.replay.config import ReplayConfig

CALL = new_call_id(datetime(2026, 12, 1, 15, tzinfo=UTC))


def test_a_day_range_is_every_day_in_it() -> None:
    days = ReplayConfig(first_day="2026-11-29", last_day="2026-12-01").days()
    assert days == [date(2026, 11, 29), date(2026, 11, 30), date(2026, 12, 1)]
    assert ReplayConfig(first_day="2026-12-01").days() == [date(2026, 12, 1)]


def test_chosen_calls_select_no_days() -> None:
    assert ReplayConfig(call_ids=[CALL]).days() == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "either first_day"),
        ({"first_day": "2026-12-01", "call_ids": [CALL]}, "not both"),
        ({"call_ids": [CALL, "+14155550199"]}, "1 of call_ids are no call ids"),
        ({"first_day": "2025-12-31"}, "not a day partition"),
        ({"first_day": "12/01/2026"}, "not a day partition"),
        ({"first_day": "2026-12-02", "last_day": "2026-12-01"}, "before first_day"),
    ],
)
def test_bad_selections_are_refused_with_why(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ReplayConfig(**config).days()


def test_only_the_settings_given_are_changed() -> None:
    settings = ReplayConfig(first_day="2026-12-01", persona="plan_renewal", vad_min_silence_s=0.6).settings()
    assert settings.changed() == {"persona": "plan_renewal", "vad_min_silence_s": 0.6}
