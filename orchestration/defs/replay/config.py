"""What one replay run takes: which recorded calls, and which agent settings to change."""

from __future__ import annotations

from datetime import date, timedelta

import dagster as dg
from pydantic import Field

from callcenter.ids import is_call_id
from callcenter.replay import ReplaySettings
from orchestration.defs.postcall.partitions import daily_calls


class ReplayConfig(dg.Config):
    """Either a range of post-call's day partitions (``first_day``..``last_day``, UTC) or the
    ``call_ids`` chosen in the call browser; the settings left empty stay as the agent's."""

    first_day: str | None = Field(None, description="first UTC day (a daily_calls partition key, YYYY-MM-DD)")
    last_day: str | None = Field(None, description="last UTC day, inclusive (defaults to first_day)")
    call_ids: list[str] = Field(default_factory=list, description="call-<uuid7> ids, e.g. picked in the call browser")
    max_calls: int = Field(
        50, ge=1, le=5000, description="refuse a selection larger than this rather than run for hours"
    )

    persona: str | None = Field(None, description="the persona to answer with (default: each call's original persona)")
    personas_dir: str | None = Field(None, description="a directory of candidate personas (default: the agent's)")
    llm_model: str | None = None
    llm_base_url: str | None = None
    tts_model: str | None = None
    tts_voice: str | None = None
    vad_min_silence_s: float | None = Field(None, gt=0.05, le=2.0, description="VAD silence that ends a caller turn")

    def settings(self) -> ReplaySettings:
        return ReplaySettings(
            persona=self.persona,
            personas_dir=self.personas_dir,
            llm_model=self.llm_model,
            llm_base_url=self.llm_base_url,
            tts_model=self.tts_model,
            tts_voice=self.tts_voice,
            vad_min_silence_s=self.vad_min_silence_s,
        )

    def days(self) -> list[date]:
        """The days selected; ValueError naming what is wrong with the selection."""
        if bool(self.first_day) == bool(self.call_ids):
            raise ValueError("give either first_day (and last_day) or call_ids, not both and not neither")
        if not self.first_day:
            bad = [c for c in self.call_ids if not is_call_id(c)]
            if bad:
                raise ValueError(f"{len(bad)} of call_ids are no call ids (call-<uuid7>), the first: {bad[0][:60]!r}")
            return []
        last = self.last_day or self.first_day
        keys = set(daily_calls.get_partition_keys())
        for key in (self.first_day, last):
            if key not in keys:
                raise ValueError(f"{key!r} is not a day partition of the recorded calls (YYYY-MM-DD, since 2026-01-01)")
        first, end = date.fromisoformat(self.first_day), date.fromisoformat(last)
        if end < first:
            raise ValueError(f"last_day {last} is before first_day {self.first_day}")
        return [first + timedelta(days=i) for i in range((end - first).days + 1)]
