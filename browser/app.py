"""The browser's FastAPI app: pages for the call list, search, a call and the dashboard.

Errors are pages with a message (400 malformed filter, 401 not signed in, 404 unknown
call or page); anything unexpected is a 500 page with a reference to the log line,
never a stack trace.
"""

from __future__ import annotations

import csv
import io
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from browser import charts
from browser.audit import CallViewAudit
from browser.auth import Analyst, NotSignedIn, current_analyst
from browser.filters import BadFilter, parse_list_query, parse_not_indexed_query
from browser.queries import DASHBOARD_SAMPLE_PER_SLOT, DASHBOARD_SLOTS_PER_DAY, CallBrowserQueries
from browser.recordings import RecordingLinks
from browser.replays import router as replays_router
from browser.settings import BrowserSettings
from browser.views import CSV_COLUMNS, NOT_INDEXED_LABELS, CallRow
from callcenter.ids import is_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.record import Sentiment
from callindex import SortField

log = logging.getLogger("browser")
HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
SEARCH_MODES = ("text", "similar")
NOT_INDEXED_ON_LIST = 10  # the call list shows the longest waiting; /not-indexed has them all


class UnknownCall(Exception):
    def __init__(self, call_id: str, why: str) -> None:
        super().__init__(why)
        self.call_id = call_id


def _page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    context.setdefault("analyst", getattr(request.state, "analyst", None))
    return templates.TemplateResponse(request, name, context, status_code=status)


def _error(request: Request, status: int, heading: str, message: str, headers: dict | None = None) -> Response:
    if request.url.path.endswith(".csv"):
        return PlainTextResponse(f"{status} {heading}: {message}\n", status_code=status, headers=headers)
    response = _page(request, "error.html", status=status, code=status, heading=heading, message=message)
    response.headers.update(headers or {})
    return response


def _queries(request: Request) -> CallBrowserQueries:
    return request.app.state.queries


router = APIRouter(dependencies=[Depends(current_analyst)])


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/calls", status_code=307)


@router.get("/calls", response_class=HTMLResponse, name="call_list")
def call_list(request: Request) -> HTMLResponse:
    settings: BrowserSettings = request.app.state.settings
    q = parse_list_query(list(request.query_params.multi_items()))
    page = _queries(request).page(q, settings.page_size)
    return _page(
        request,
        "list.html",
        nav="calls",
        q=q,
        page=page,
        not_indexed=_queries(request).not_indexed(page_size=NOT_INDEXED_ON_LIST),
        directions=[d.value for d in CallDirection],
        outcomes=[o.value for o in CallOutcome],
        sentiments=[s.value for s in Sentiment],
        sort_fields=list(SortField),
    )


def csv_cell(value: object) -> object:
    """A spreadsheet must not run a summary as a formula: text starting =, +, - or @ is quoted."""
    if value is None:
        return ""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


class ExportCutOff(Exception):
    """Raised out of a CSV export that failed midway: the server then drops the connection
    before the last chunk, so the client's download fails instead of ending as a short file."""


def _csv_lines(rows: Iterator[CallRow]) -> Iterator[str]:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(CSV_COLUMNS)
    written = 0
    try:
        for row in rows:
            writer.writerow([csv_cell(getattr(row, c)) for c in CSV_COLUMNS])
            written += 1
            if buf.tell() > 64 * 1024:
                yield buf.getvalue()
                buf.seek(0)
                buf.truncate()
    except Exception as exc:
        ref = uuid.uuid4().hex[:12]
        log.exception("CSV export failed after %d rows (ref %s)", written, ref)
        # The status line is long gone: the rows so far, then a last line for whoever opens the
        # file anyway, then the cut-off that makes HTTP clients and browsers report a failure.
        yield buf.getvalue() + f"ERROR (reference {ref}): the export failed after {written} rows and is incomplete\n"
        raise ExportCutOff(f"export cut off after {written} rows (ref {ref})") from exc
    yield buf.getvalue()


def _audit(request: Request, event: str, **details: object) -> None:
    analyst = getattr(request.state, "analyst", None)
    if analyst is not None:
        request.app.state.audit.record(event, analyst, request.client.host if request.client else None, **details)


@router.get("/calls.csv", name="export_csv")
def export_csv(request: Request) -> StreamingResponse:
    settings: BrowserSettings = request.app.state.settings
    q = parse_list_query(list(request.query_params.multi_items()))
    rows = _queries(request).export_rows(q, settings.csv_export_max_rows)
    # Up to csv_export_max_rows calls leave in one file: who took which, like a page view.
    _audit(request, "calls_exported", filters=str(request.query_params), max_rows=settings.csv_export_max_rows)
    return StreamingResponse(
        _csv_lines(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


@router.get("/calls/{call_id}", response_class=HTMLResponse, name="call_page")
def call_page(request: Request, call_id: str, analyst: Annotated[Analyst, Depends(current_analyst)]) -> HTMLResponse:
    if not is_call_id(call_id):
        raise UnknownCall(call_id, f"{call_id!r} is not a call id (call ids look like call-<uuid7>)")
    call = _queries(request).call_view(call_id)
    if call is None:
        raise UnknownCall(call_id, f"no call {call_id} in the call index")
    request.app.state.audit.call_viewed(analyst, call_id, request.client.host if request.client else None)
    if call.recording_uri:
        try:
            call.audio_url = request.app.state.recording_links.playback_url(call.recording_uri)
        except Exception as exc:  # a broken link must not hide the rest of the call
            log.warning("no playback URL for %s: %s", call_id, exc)
            call.audio_problem = f"The recording cannot be linked right now ({type(exc).__name__})."
    else:
        call.audio_problem = "No recording is stored for this call."
    return _page(request, "call.html", call=call)


@router.get("/not-indexed", response_class=HTMLResponse, name="not_indexed")
def not_indexed(request: Request) -> HTMLResponse:
    """Calls post-call has not indexed: pending (requested, batch failed or running) or refused
    (unreadable report, processing failed) with the reason. Ids, days and reasons only."""
    settings: BrowserSettings = request.app.state.settings
    state, page = parse_not_indexed_query(list(request.query_params.multi_items()))
    found = _queries(request).not_indexed(state, page, settings.page_size)
    return _page(
        request,
        "not_indexed.html",
        nav="calls",
        found=found,
        state=state.value if state else "",
        page_no=page,
        labels=NOT_INDEXED_LABELS,
    )


def _search_limit(raw: str | None) -> int:
    if raw in (None, ""):
        return 50
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise BadFilter(f"limit must be a whole number from 1 to 200 (got {raw!r})")
    return int(raw)


@router.get("/search", response_class=HTMLResponse, name="search_page")
def search_page(request: Request) -> HTMLResponse:
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
    queries = _queries(request)
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
        _audit(request, "calls_searched", mode=mode, query=text, similar_to=similar_to, results=len(results))
    return _page(
        request, "search.html", nav="search", text=text, mode=mode, results=results, limit=limit, similar_to=similar_to
    )


@router.get("/dashboard", response_class=HTMLResponse, name="dashboard")
def dashboard(request: Request) -> HTMLResponse:
    q = parse_list_query(list(request.query_params.multi_items()))
    d = _queries(request).dashboard(q)
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
    return _page(
        request,
        "dashboard.html",
        nav="dashboard",
        q=q,
        d=d,
        charts=charts_,
        sample_per_day=DASHBOARD_SLOTS_PER_DAY * DASHBOARD_SAMPLE_PER_SLOT,
    )


def _security_headers(settings: BrowserSettings) -> dict[str, str]:
    # Only this app's own scripts and styles; audio from the bucket (signed URL) or the emulator.
    media = (
        settings.storage_emulator_host.rstrip("/")
        if settings.storage_emulator_host
        else "https://storage.googleapis.com"
    )
    return {
        "Content-Security-Policy": (
            f"default-src 'self'; media-src 'self' {media}; img-src 'self' data:; "
            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
        ),
        # Signed recording URLs must not leak through Referer.
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


class ResponseHeaders:
    """Adds the security headers and Server-Timing (time to the response's start; read by
    bench/browser_pages.py and browser dev tools) to every response.

    Plain ASGI rather than @app.middleware("http"): Starlette's BaseHTTPMiddleware ends a
    streamed body cleanly when the app raises midway, which turned a failed CSV export into a
    complete-looking short file."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                timing = f"app;dur={(time.perf_counter() - started) * 1000:.1f}"
                names = {name for name, _ in self.headers} | {b"server-timing"}
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in names]
                message = {**message, "headers": [*kept, *self.headers, (b"server-timing", timing.encode())]}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(settings: BrowserSettings | None = None, queries: CallBrowserQueries | None = None) -> FastAPI:
    """The app; ``queries`` is opened from ``settings.index_url`` at startup unless given."""
    settings = settings or BrowserSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "queries", None) is None:
            app.state.queries = CallBrowserQueries.open(settings.call_index_url())
        try:
            yield
        finally:
            app.state.queries.close()

    app = FastAPI(title="Call browser", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.settings = settings
    app.state.queries = queries
    app.state.audit = CallViewAudit(settings.audit_log_path)
    app.state.recording_links = RecordingLinks(settings)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(ResponseHeaders, headers=_security_headers(settings))

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    app.include_router(router)
    app.include_router(replays_router)

    @app.exception_handler(NotSignedIn)
    async def _not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        return _error(request, 401, "Sign in required", str(exc), headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(BadFilter)
    async def _bad_filter(request: Request, exc: BadFilter) -> Response:
        return _error(request, 400, "Bad request", str(exc))

    @app.exception_handler(UnknownCall)
    async def _unknown_call(request: Request, exc: UnknownCall) -> Response:
        return _error(request, 404, "Call not found", str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return _error(request, 404, "Not found", f"there is no page at {request.url.path}")
        return _error(request, exc.status_code, "Request refused", str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        ref = uuid.uuid4().hex[:12]
        log.exception("unhandled error (ref %s) on %s", ref, request.url.path)
        return _error(request, 500, "Something went wrong", f"The error is logged with reference {ref}.")

    return app
