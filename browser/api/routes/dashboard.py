"""The dashboard (``/dashboard``): calls per day by outcome, answer rate, handle time, sentiment,
voice-to-voice latency, and how many calls are not indexed yet."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from browser import charts
from browser.api.deps import QueriesDep
from browser.api.templating import page
from browser.auth import current_analyst
from browser.filters import parse_list_query
from browser.queries import DASHBOARD_SAMPLE_PER_SLOT, DASHBOARD_SLOTS_PER_DAY

router = APIRouter(dependencies=[Depends(current_analyst)])


@router.get("/dashboard", response_class=HTMLResponse, name="dashboard")
def dashboard(request: Request, queries: QueriesDep) -> HTMLResponse:
    q = parse_list_query(list(request.query_params.multi_items()))
    d = queries.dashboard(q)
    charts_ = [
        ("Calls per day by outcome", charts.stacked_bars("Calls per day by outcome", d.days, d.outcomes_per_day)),
        (
            "Answer rate",
            charts.line_chart("Answer rate per day", d.days, {"answer rate": d.answer_rate_per_day}, "%", 100),
        ),
        (
            "Average handle time (answered calls)",
            charts.line_chart("Average handle time per day", d.days, {"handle time": d.avg_handle_per_day}, " s"),
        ),
        ("Sentiment trend", charts.line_chart("Share of calls by sentiment", d.days, d.sentiment_per_day, "%", 100)),
        (
            "Voice-to-voice latency",
            charts.line_chart(
                "Voice-to-voice latency per day", d.days, {"p50": d.v2v_p50_per_day, "p95": d.v2v_p95_per_day}, " ms"
            ),
        ),
    ]
    return page(
        request,
        "dashboard.html",
        nav="dashboard",
        q=q,
        d=d,
        charts=charts_,
        sample_per_day=DASHBOARD_SLOTS_PER_DAY * DASHBOARD_SAMPLE_PER_SLOT,
    )
