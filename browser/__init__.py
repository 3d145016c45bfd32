"""Analyst call browser: a small FastAPI app over the call index.

Server-rendered pages (Jinja2), charts as inline SVG drawn on the server, a little
vanilla JS for click-to-seek. Nothing is fetched from outside the app: no CDN.
Run it with ``python -m browser``.
"""
