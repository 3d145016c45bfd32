"""The fast engine depends on the engine contract (chatterbox_engine.py), never on the backend
that picks it (chatterbox.py): no import circle between chatterbox.py and chatterbox_fast/."""

from __future__ import annotations

import ast
from pathlib import Path

import tts.app.backends.chatterbox_fast as fast

BACKEND = "tts.app.backends.chatterbox"


def _imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function (lazy imports count too)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules.update(f"{node.module}.{alias.name}" for alias in node.names)
    return modules


def test_fast_engine_never_imports_the_backend_that_picks_it() -> None:
    files = sorted(Path(fast.__file__).parent.glob("*.py"))
    assert files
    offenders = {f.name: sorted(_imported_modules(f) & {BACKEND}) for f in files}
    assert not {name: found for name, found in offenders.items() if found}


def test_the_finder_sees_lazy_imports(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tts.app.backends.chatterbox import ChatterboxCall\n")
    assert BACKEND in _imported_modules(module)
