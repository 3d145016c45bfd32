"""Builds the call browser: ``create_app`` (``python -m browser`` serves it).

The app's parts live apart: settings in ``browser.core.config``, routes in ``browser.api.routes``
(one router per area), what they share in ``browser.api.deps`` and ``browser.api.templating``,
error pages in ``browser.api.errors``, response headers in ``browser.api.middleware``.
"""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from browser.api.errors import install_error_handlers
from browser.api.middleware import ResponseHeaders, security_headers
from browser.api.routes import calls, dashboard, health, not_indexed, replays, search
from browser.api.templating import STATIC_DIR
from browser.audit import CallViewAudit
from browser.core.config import BrowserSettings
from browser.queries import CallBrowserQueries
from browser.recordings import RecordingLinks


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
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.add_middleware(ResponseHeaders, headers=security_headers(settings))
    for module in (health, calls, not_indexed, search, dashboard, replays):
        app.include_router(module.router)
    install_error_handlers(app)
    return app
