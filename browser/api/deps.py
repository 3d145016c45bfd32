"""What the routes share, as FastAPI dependencies: the settings, the call index's queries, the
audit trail, the recording links and the signed-in analyst (``browser.auth``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from browser.audit import CallViewAudit
from browser.auth import Analyst, current_analyst
from browser.core.config import BrowserSettings
from browser.queries import CallBrowserQueries
from browser.recordings import RecordingLinks


def get_settings(request: Request) -> BrowserSettings:
    return request.app.state.settings


def get_queries(request: Request) -> CallBrowserQueries:
    return request.app.state.queries


def get_audit(request: Request) -> CallViewAudit:
    return request.app.state.audit


def get_recording_links(request: Request) -> RecordingLinks:
    return request.app.state.recording_links


SettingsDep = Annotated[BrowserSettings, Depends(get_settings)]
QueriesDep = Annotated[CallBrowserQueries, Depends(get_queries)]
AuditDep = Annotated[CallViewAudit, Depends(get_audit)]
RecordingLinksDep = Annotated[RecordingLinks, Depends(get_recording_links)]
AnalystDep = Annotated[Analyst, Depends(current_analyst)]


def client_host(request: Request) -> str | None:
    return request.client.host if request.client else None


def audit(request: Request, event: str, **details: object) -> None:
    """One audit record for the signed-in analyst of this request (none before sign-in)."""
    analyst = getattr(request.state, "analyst", None)
    if analyst is not None:
        get_audit(request).record(event, analyst, client_host(request), **details)
