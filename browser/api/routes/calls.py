"""The call list (``/calls``), its CSV export (``/calls.csv``) and one call's page (``/calls/<id>``)."""

from __future__ import annotations

import csv
import io
import logging
import uuid
from collections.abc import Iterator

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, StreamingResponse

from browser.api.deps import AnalystDep, AuditDep, QueriesDep, RecordingLinksDep, SettingsDep, audit, client_host
from browser.api.errors import UnknownCall
from browser.api.templating import page
from browser.auth import current_analyst
from browser.filters import parse_list_query
from browser.views import CSV_COLUMNS, CallRow
from callcenter.ids import is_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.record import Sentiment
from callindex import SortField

log = logging.getLogger("browser")
NOT_INDEXED_ON_LIST = 10  # the call list shows the longest waiting; /not-indexed has them all

router = APIRouter(dependencies=[Depends(current_analyst)])


@router.get("/", include_in_schema=False)
def home() -> RedirectResponse:
    return RedirectResponse("/calls", status_code=307)


@router.get("/calls", response_class=HTMLResponse, name="call_list")
def call_list(request: Request, settings: SettingsDep, queries: QueriesDep) -> HTMLResponse:
    q = parse_list_query(list(request.query_params.multi_items()))
    return page(
        request,
        "list.html",
        nav="calls",
        q=q,
        page=queries.page(q, settings.page_size),
        not_indexed=queries.not_indexed(page_size=NOT_INDEXED_ON_LIST),
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


@router.get("/calls.csv", name="export_csv")
def export_csv(request: Request, settings: SettingsDep, queries: QueriesDep) -> StreamingResponse:
    q = parse_list_query(list(request.query_params.multi_items()))
    rows = queries.export_rows(q, settings.csv_export_max_rows)
    # Up to csv_export_max_rows calls leave in one file: who took which, like a page view.
    audit(request, "calls_exported", filters=str(request.query_params), max_rows=settings.csv_export_max_rows)
    return StreamingResponse(
        _csv_lines(rows),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="calls.csv"'},
    )


@router.get("/calls/{call_id}", response_class=HTMLResponse, name="call_page")
def call_page(
    request: Request,
    call_id: str,
    analyst: AnalystDep,
    queries: QueriesDep,
    audit_log: AuditDep,
    recording_links: RecordingLinksDep,
) -> HTMLResponse:
    if not is_call_id(call_id):
        raise UnknownCall(call_id, f"{call_id!r} is not a call id (call ids look like call-<uuid7>)")
    call = queries.call_view(call_id)
    if call is None:
        raise UnknownCall(call_id, f"no call {call_id} in the call index")
    audit_log.call_viewed(analyst, call_id, client_host(request))
    if call.recording_uri:
        try:
            call.audio_url = recording_links.playback_url(call.recording_uri)
        except Exception as exc:  # a broken link must not hide the rest of the call
            log.warning("no playback URL for %s: %s", call_id, exc)
            call.audio_problem = f"The recording cannot be linked right now ({type(exc).__name__})."
    else:
        call.audio_problem = "No recording is stored for this call."
    return page(request, "call.html", call=call)
