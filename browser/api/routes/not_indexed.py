"""Calls post-call has not indexed (``/not-indexed``): pending (requested; its batch failed or is
still running) or refused with the reason (unreadable report, processing failed). Call ids,
days and reasons only, from the call index (``callindex.unindexed``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from browser.api.deps import QueriesDep, SettingsDep
from browser.api.templating import page
from browser.auth import current_analyst
from browser.filters import parse_not_indexed_query
from browser.views import NOT_INDEXED_LABELS

router = APIRouter(dependencies=[Depends(current_analyst)])


@router.get("/not-indexed", response_class=HTMLResponse, name="not_indexed")
def not_indexed(request: Request, settings: SettingsDep, queries: QueriesDep) -> HTMLResponse:
    state, page_no = parse_not_indexed_query(list(request.query_params.multi_items()))
    return page(
        request,
        "not_indexed.html",
        nav="calls",
        found=queries.not_indexed(state, page_no, settings.page_size),
        state=state.value if state else "",
        page_no=page_no,
        labels=NOT_INDEXED_LABELS,
    )
