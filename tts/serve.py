"""Container entry point: serve this folder as the `tts` package, wherever it was copied.

Cloud Buildpacks build from tts/ alone and put it in /workspace, so `import tts` has no
parent folder to come from; this registers the folder under that name, then starts the
server. Listens on all interfaces and honours $PORT (the platform's), unless TTS_HOST /
TTS_PORT say otherwise.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path


def _register_package() -> None:
    here = Path(__file__).resolve().parent
    if "tts" in sys.modules:
        return
    spec = importlib.util.spec_from_file_location("tts", here / "__init__.py", submodule_search_locations=[str(here)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["tts"] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    os.environ.setdefault("TTS_HOST", "0.0.0.0")
    if "PORT" in os.environ:
        os.environ.setdefault("TTS_PORT", os.environ["PORT"])
    _register_package()
    from tts.app.__main__ import main

    main()
