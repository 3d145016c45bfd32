"""The call list's query string, parsed strictly into the index's own query vocabulary
(``callindex.CallQuery``): a malformed or unknown filter is a 400, never ignored.

HTML forms submit empty fields as ``name=``; those mean "no filter".
"""

from __future__ import annotations

from urllib.parse import urlencode

from pydantic import ConfigDict, Field, ValidationError

from callindex import UnindexedState
from callindex.vocabulary import CallQuery


class BadFilter(ValueError):
    """A query string the browser cannot honour; the message says what to fix."""


class CallListQuery(CallQuery):
    """The index's query (``callindex.CallQuery``: filters and sort, its own words) and the page
    of the call list (and of its CSV export)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    page: int = Field(1, ge=1, le=100_000)

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


NOT_INDEXED_PARAMS = ("state", "page")


def parse_not_indexed_query(pairs: list[tuple[str, str]]) -> tuple[UnindexedState | None, int]:
    """``state`` (one of callindex.UnindexedState's values, or empty for all) and ``page``."""
    raw: dict[str, str] = {}
    for name, value in pairs:
        if name not in NOT_INDEXED_PARAMS:
            raise BadFilter(f"unknown parameter {name!r}; this list understands: {', '.join(NOT_INDEXED_PARAMS)}")
        if name in raw:
            raise BadFilter(f"parameter {name!r} is given more than once; give it once")
        raw[name] = value.strip()
    state = raw.get("state") or None
    if state is not None and state not in set(UnindexedState):
        raise BadFilter(f"state must be one of {', '.join(s.value for s in UnindexedState)} (got {state[:40]!r})")
    page = raw.get("page") or "1"
    if not page.isdigit() or not 1 <= int(page) <= 100_000:
        raise BadFilter(f"page must be a whole number from 1 to 100000 (got {page[:40]!r})")
    return (UnindexedState(state) if state else None), int(page)
