"""The pages' Jinja2 templates (``browser/templates``) and how a route renders one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # browser/
templates = Jinja2Templates(directory=PACKAGE_DIR / "templates")
STATIC_DIR = PACKAGE_DIR / "static"


def page(request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
    """Render ``name`` with the signed-in analyst (for the header) unless the route gives one."""
    context.setdefault("analyst", getattr(request.state, "analyst", None))
    return templates.TemplateResponse(request, name, context, status_code=status)
