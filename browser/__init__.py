"""Analyst call browser: a small FastAPI app over the call index.

Server-rendered pages (Jinja2), charts as inline SVG drawn on the server, a little
vanilla JS for click-to-seek. Nothing is fetched from outside the app: no CDN.
Run it with ``python -m browser``. Laid out as ``tts/app`` is: the factory in ``browser.main``,
settings in ``browser.core.config``, routes in ``browser.api.routes``, what they share in
``browser.api.deps`` (docs/browser.md, "Code layout").
"""
