"""Search (``/search``): full text over redacted transcripts and summaries, nearest calls by embedding."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from browser.api.deps import QueriesDep, audit
from browser.api.errors import UnknownCall
from browser.api.templating import page
from browser.auth import current_analyst
from browser.filters import BadFilter
from callcenter.ids import is_call_id

SEARCH_MODES = ("text", "similar")

router = APIRouter(dependencies=[Depends(current_analyst)])


def _search_limit(raw: str | None) -> int:
    if raw in (None, ""):
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise BadFilter(f"limit must be a whole number from 1 to 200 (got {raw!r})")
    return int(raw)


@router.get("/search", response_class=HTMLResponse, name="search_page")
def search_page(request: Request, queries: QueriesDep) -> HTMLResponse:
    params = dict(request.query_params)
    unknown = set(params) - {"q", "mode", "similar_to", "limit"}
    if unknown:
        raise BadFilter(f"unknown parameter {sorted(unknown)[0]!r}; search understands: q, mode, similar_to, limit")
    text = params.get("q", "").strip()
    mode = params.get("mode") or "text"
    if mode not in SEARCH_MODES:
        raise BadFilter(f"mode must be one of {', '.join(SEARCH_MODES)} (got {mode!r})")
    limit = _search_limit(params.get("limit"))
    similar_to = params.get("similar_to", "").strip() or None
    results = None
    if similar_to:
        if not is_call_id(similar_to):
            raise BadFilter(f"similar_to must be a call id like call-<uuid7> (got {similar_to!r})")
        results = queries.similar_to_call(similar_to, limit)
        if results is None:
            raise UnknownCall(similar_to, f"no call {similar_to} in the call index to compare with")
    elif text:
        if len(text) > 500:
            raise BadFilter("the search text is longer than 500 characters; shorten it")
        results = queries.search_text(text, limit) if mode == "text" else queries.similar_to_text(text, limit)
    if results is not None:
        audit(request, "calls_searched", mode=mode, query=text, similar_to=similar_to, results=len(results))
    return page(
        request, "search.html", nav="search", text=text, mode=mode, results=results, limit=limit, similar_to=similar_to
    )
