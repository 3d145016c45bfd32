"""``python -m browser``: serve the call browser with uvicorn (127.0.0.1:3001 unless configured)."""

from __future__ import annotations

import logging

import uvicorn

from browser.core.config import BrowserSettings
from browser.main import create_app


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    settings = BrowserSettings()
    # Port also from CALLCENTER_BROWSER_PORT (the devstack sets it next to the Dagster UI's).
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level="info", access_log=False)


if __name__ == "__main__":
    main()
