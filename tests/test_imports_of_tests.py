"""Nothing outside tests/ imports tests.*: benches, services and scripts never depend on the
test suite; what they share with it (the doubles) lives in doubles/."""

from __future__ import annotations

import ast
import os
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SKIPPED_DIRS = {"tests", "node_modules", "__pycache__"}


def _modules_outside_tests() -> Iterator[Path]:
    for folder, subfolders, files in os.walk(REPO_ROOT):
        # hidden folders hold virtualenvs, git and local state, not project modules
        subfolders[:] = [d for d in subfolders if not d.startswith(".") and d not in SKIPPED_DIRS]
        yield from (Path(folder) / name for name in files if name.endswith(".py"))


def _imports_of_tests(source: str, filename: str) -> list[str]:
    """Every import of tests or tests.* in a module, at the top or inside a function."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{filename}:{node.lineno} {name}" for name in names if name == "tests" or name.startswith("tests.")]
    return found


def test_no_module_outside_tests_imports_tests() -> None:
    modules = list(_modules_outside_tests())
    assert any(p.parts[-2:] == ("bench", "dialing_dials.py") for p in modules), "the walk must reach bench/"
    offenders = [
        hit for path in modules for hit in _imports_of_tests(path.read_text(), str(path.relative_to(REPO_ROOT)))
    ]
    assert not offenders, "move what these need out of tests/ (doubles/ for stand-ins):\n" + "\n".join(offenders)


def test_the_finder_sees_every_form_of_import() -> None:
    source = (
        "import tests.conftest\n"
        "from tests.agent import x\n"
        "def f():\n    from tests import conftest\n"
        "import testsuite\nfrom . import tests\n"
    )
    assert [hit.split(" ")[1] for hit in _imports_of_tests(source, "m.py")] == [
        "tests.conftest",
        "tests.agent",
        "tests",
    ]
