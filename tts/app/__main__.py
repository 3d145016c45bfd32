"""`python -m tts.app`: serve on TTS_HOST:TTS_PORT (127.0.0.1:8880 by default)."""

from __future__ import annotations

import logging

import uvicorn

from tts.app.core.config import Settings
from tts.app.main import create_app


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level)


if __name__ == "__main__":
    main()
