"""The call list's query string, parsed strictly: a malformed or unknown filter is a 400, never ignored.

HTML forms submit empty fields as ``name=``; those mean "no filter".
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.record import Sentiment


class BadFilter(ValueError):
    """A query string the browser cannot honour; the message says what to fix."""


# Bounds of every filter: past them the index's date and number arithmetic overflowed (a 500
# page, an empty CSV). Wide enough for any real call.
FIRST_DAY = date(2000, 1, 1)
LAST_DAY = date(2099, 12, 31)
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_LATENCY_MS = 600_000.0
MAX_NAME_CHARS = 200


class SortField(StrEnum):
    STARTED_AT = "started_at"
    DURATION = "duration"
    LATENCY = "latency"
    SENTIMENT = "sentiment"
    CAMPAIGN = "campaign"
    OUTCOME = "outcome"


class SortOrder(StrEnum):
    ASC = "asc"
    DESC = "desc"


class CallListQuery(BaseModel):
    """Filters, sort and page of the call list (and of its CSV export)."""

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
    page: int = Field(1, ge=1, le=100_000)

    @model_validator(mode="after")
    def _ranges_in_order(self) -> CallListQuery:
        for low, high, what in (
            (self.date_from, self.date_to, "date_from must be on or before date_to"),
            (self.min_duration_s, self.max_duration_s, "min_duration_s must not exceed max_duration_s"),
            (self.min_latency_ms, self.max_latency_ms, "min_latency_ms must not exceed max_latency_ms"),
        ):
            if low is not None and high is not None and low > high:
                raise ValueError(what)
        return self

    def filter_params(self) -> dict[str, str]:
        """The filters only (no sort or page), as query parameters."""
        data = self.model_dump(mode="json", exclude={"sort", "order", "page"}, exclude_none=True)
        return {k: str(v) for k, v in data.items()}

    def url_params(self, **override: object) -> str:
        params = self.filter_params()
        params.update(sort=self.sort.value, order=self.order.value, page=str(self.page))
        params.update({k: str(v) for k, v in override.items()})
        return urlencode(params)

    def has_filters(self) -> bool:
        return bool(self.filter_params())


def _describe(error: dict) -> str:
    loc = ".".join(str(p) for p in error["loc"]) or "filters"
    msg = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(CallListQuery.model_fields)
        return f"unknown parameter {loc!r}; the call list understands: {allowed}"
    if error["type"] == "enum":
        return f"{loc}: {msg}"
    got = repr(error.get("input"))
    got = got if len(got) <= 60 else got[:57] + "..."
    return f"{loc}: {msg} (got {got})" if loc != "filters" else msg


def parse_list_query(pairs: list[tuple[str, str]], allow: frozenset[str] = frozenset()) -> CallListQuery:
    """Build the query from raw ``(name, value)`` pairs; ``allow`` names extra params the caller handles."""
    raw: dict[str, str] = {}
    for name, value in pairs:
        if name in allow:
            continue
        if name in raw:
            raise BadFilter(f"parameter {name!r} is given more than once; give it once")
        value = value.strip()
        if value:
            raw[name] = value
    try:
        return CallListQuery.model_validate(raw)
    except ValidationError as exc:
        raise BadFilter("; ".join(_describe(e) for e in exc.errors())) from None
