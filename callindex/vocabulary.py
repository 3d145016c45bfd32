"""The call index's query vocabulary, in an analyst's terms: which calls (days, campaign,
outcome, sentiment, persona, duration and latency bounds), in which order. The browser's list,
export and dashboard take it as it is; ``CallQuery.filter()`` turns it into the engines'
``CallFilter``, here and nowhere else.

Bounds of every filter: past them the engines' date and number arithmetic overflowed (a 500
page, an empty CSV). Wide enough for any real call.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.record import Sentiment
from callindex.api import CallFilter, SortField

FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_LATENCY_MS = 600_000.0
MAX_NAME_CHARS = 200


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


class CallQuery(BaseModel):
    """Which calls, in which order."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    date_from: date | None = Field(None, ge=FIRST_DAY, le=LAST_DAY, description="first day (UTC) of calls to include")
    date_to: date | None = Field(
        None, ge=FIRST_DAY, le=LAST_DAY, description="last day (UTC) of calls to include, inclusive"
    )
    campaign: str | None = Field(None, max_length=MAX_NAME_CHARS)
    direction: CallDirection | None = None
    outcome: CallOutcome | None = None
    sentiment: Sentiment | None = None
    persona: str | None = Field(None, max_length=MAX_NAME_CHARS)
    min_duration_s: float | None = Field(None, ge=0, le=MAX_DURATION_S)
    max_duration_s: float | None = Field(None, ge=0, le=MAX_DURATION_S)
    min_latency_ms: float | None = Field(
        None, ge=0, le=MAX_LATENCY_MS, description="p50 voice-to-voice latency of the call"
    )
    max_latency_ms: float | None = Field(None, ge=0, le=MAX_LATENCY_MS)
    sort: SortField = SortField.STARTED_AT
    order: SortOrder = SortOrder.DESC

    @model_validator(mode="after")
    def _ranges_in_order(self) -> CallQuery:
        for low, high, what in (
            (self.date_from, self.date_to, "date_from must be on or before date_to"),
            (self.min_duration_s, self.max_duration_s, "min_duration_s must not exceed max_duration_s"),
            (self.min_latency_ms, self.max_latency_ms, "min_latency_ms must not exceed max_latency_ms"),
        ):
            if low is not None and high is not None and low > high:
                raise ValueError(what)
        return self

    @property
    def descending(self) -> bool:
        return self.order is SortOrder.DESC

    def filter(self) -> CallFilter:
        """The engines' filter: days become [first midnight, midnight after the last day) in UTC."""
        kw = {
            "campaign_id": self.campaign,
            "direction": self.direction,
            "outcomes": (self.outcome,) if self.outcome else None,
            "sentiment": self.sentiment,
            "persona": self.persona,
            "min_duration_s": self.min_duration_s,
            "max_duration_s": self.max_duration_s,
            "min_latency_p50_ms": self.min_latency_ms,
            "max_latency_p50_ms": self.max_latency_ms,
            "started_from": datetime.combine(self.date_from, time(), UTC) if self.date_from else None,
            "started_to": datetime.combine(self.date_to + timedelta(days=1), time(), UTC) if self.date_to else None,
        }
        return CallFilter(**{k: v for k, v in kw.items() if v is not None})
