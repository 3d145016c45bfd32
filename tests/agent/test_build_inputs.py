"""The agent image's build inputs, read without a builder: Google Cloud Buildpacks
(agent/build-context.sh, then `pack build --builder gcr.io/buildpacks/builder`) and the
Dockerfile fallback produce an image whose default process is the LiveKit worker, with every
package and first-party module the worker imports.

Google's builder starts the Procfile's ``web`` process (or GOOGLE_ENTRYPOINT); with neither it
falls back to serving ``main:app`` with gunicorn and the build fails. The agent Deployment runs
the image's default process (it sets no command), so that process must be the worker.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

import yaml

from orchestration.image_requirements import canonical, requirement_name

REPO_ROOT = Path(__file__).resolve().parents[2]
AGENT = REPO_ROOT / "agent"
FIRST_PARTY = {"agent", "callcenter"}
WORKER_COMMAND = ["python", "-m", "agent.worker", "start"]
ENTRY_MODULE = "agent.worker"


def _procfile() -> dict[str, str]:
    processes = {}
    for line in (AGENT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            processes[name.strip()] = command.strip()
    return processes


def _pins() -> dict[str, str]:
    pins = {}
    for line in (AGENT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and version, f"agent/requirements.txt: {line!r} is not pinned with =="
            pins[canonical(name)] = version.strip()
    return pins


def _module_file(module: str) -> Path | None:
    path = REPO_ROOT.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports_from(entry: str) -> tuple[set[str], set[str]]:
    """(first-party modules, third-party top-level names) the entry module reaches at import
    time, following first-party imports transitively (module-level and function-level alike)."""
    seen: set[str] = set()
    third: set[str] = set()
    todo = [entry]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        path = _module_file(module)
        if path is None:
            continue  # a name imported from a first-party module, not a module of its own
        seen.add(module)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                names = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
            for name in names:
                top = name.split(".")[0]
                if top in FIRST_PARTY:
                    todo.append(name)
                elif top and top not in sys.stdlib_module_names and top != "__future__":
                    third.add(top)
    return seen, third


def _dependency_closure(roots: set[str]) -> set[str]:
    """The pinned distributions and everything they require (markers for extras skipped)."""
    closure: set[str] = set()
    todo = list(roots)
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for requirement in requires:
            if "extra ==" in requirement:
                continue
            dep = requirement_name(requirement)
            if dep:
                todo.append(canonical(dep))
    return closure


def test_buildpacks_start_the_worker_as_the_web_process() -> None:
    processes = _procfile()
    assert "web" in processes, "Google Cloud Buildpacks start the Procfile's web process; agent/Procfile has none"
    assert processes["web"].split() == WORKER_COMMAND
    module = processes["web"].split()[2]
    assert _module_file(module) is not None, f"the Procfile runs {module}, which does not exist"
    tree = ast.parse(_module_file(module).read_text())
    assert any(isinstance(n, ast.If) and "__main__" in ast.unparse(n.test) for n in tree.body), (
        f"{module} does nothing when run with -m"
    )


def test_the_deployment_runs_the_images_default_process() -> None:
    deployment = next(
        d
        for d in yaml.safe_load_all((REPO_ROOT / "manifests" / "base" / "agent.yaml").read_text())
        if d["kind"] == "Deployment"
    )
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert "command" not in container and "args" not in container


def test_requirements_pin_every_package_the_worker_imports() -> None:
    pins = _pins()
    modules, third_party = _imports_from(ENTRY_MODULE)
    assert {"agent.worker", "callcenter.dispatch"} <= modules
    provided = _dependency_closure(set(pins))
    distributions = importlib.metadata.packages_distributions()
    missing = {}
    for name in sorted(third_party):
        dists = {canonical(d) for d in distributions.get(name, [])}
        assert dists, f"the worker imports {name!r}, which no installed distribution provides"
        if not dists & provided:
            missing[name] = sorted(dists)
    assert not missing, f"imported by the worker but not installed from agent/requirements.txt: {missing}"


def test_requirements_match_the_tested_lock() -> None:
    lock = {}
    for line in (REPO_ROOT / "requirements" / "dev.lock").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.\-\[\]]+)==([^\s;\\]+)", line.strip())
        if match:
            lock[canonical(match.group(1).split("[")[0])] = match.group(2)
    differs = {name: (version, lock.get(name)) for name, version in _pins().items() if lock.get(name) != version}
    assert not differs, f"agent/requirements.txt differs from requirements/dev.lock (CI tests the lock): {differs}"


# --- the Dockerfile fallback --------------------------------------------------------------------

DOCKERFILE = AGENT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    from tests.manifests.test_orchestration_image import instructions

    return instructions(DOCKERFILE.read_text())


def test_the_dockerfile_runs_the_same_process_as_a_non_root_user() -> None:
    steps = _instructions()
    cmd = [args for kind, args in steps if kind == "CMD"]
    assert cmd and yaml.safe_load(cmd[-1]) == WORKER_COMMAND, "the Dockerfile starts something else than the Procfile"
    user = [args for kind, args in steps if kind == "USER"]
    assert user and user[-1].split(":")[0].isdigit() and user[-1].split(":")[0] != "0", (
        "a numeric non-root USER: the Deployment sets runAsNonRoot, which a named user cannot satisfy"
    )
    bases = [args for kind, args in steps if kind == "FROM"]
    args = {a.partition("=")[0]: a.partition("=")[2] for kind, a in steps if kind == "ARG"}
    for base in bases:
        image = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), base.split()[0])
        assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image), f"unpinned or not Python 3.11: {image}"


def test_the_dockerfile_copies_what_the_worker_imports() -> None:
    steps = _instructions()
    copied = set()
    for kind, args in steps:
        if kind == "COPY" and not args.startswith("--from="):
            *sources, _ = [a for a in args.split() if not a.startswith("--")]
            copied |= {s.rstrip("/") for s in sources}
    modules, _ = _imports_from(ENTRY_MODULE)
    packages = {m.split(".")[0] for m in modules}
    assert {p for p in packages if p not in copied} == set(), f"first-party packages not copied: {packages - copied}"
    assert "agent/requirements.txt" in copied
    for source in copied:
        assert (REPO_ROOT / source).exists(), f"COPY {source}: no such path (build from the repository root)"
    # the personas ship inside agent/ (data the worker loads by name)
    assert (AGENT / "personas").is_dir()
    ignore = (AGENT / "Dockerfile.dockerignore").read_text().split()
    assert "**/__pycache__" in ignore and "tests" in ignore


# --- the Buildpacks context -----------------------------------------------------------------------


def test_build_context_holds_what_buildpacks_read(tmp_path: Path) -> None:
    """build-context.sh builds from a commit (HEAD here): Procfile with the web process,
    requirements and the Python version at the root, agent/ and callcenter/ as packages."""
    out = tmp_path / "ctx"
    subprocess.run(["bash", str(AGENT / "build-context.sh"), "HEAD", str(out)], check=True, capture_output=True)
    processes = dict(line.split(":", 1) for line in (out / "Procfile").read_text().splitlines() if ":" in line)
    assert processes.get("web", "").split() == WORKER_COMMAND, "the committed Procfile has no web process"
    assert _pins() and (out / "requirements.txt").is_file()
    assert (out / ".python-version").read_text().strip() == "3.11"
    for package in FIRST_PARTY:
        assert (out / package / "__init__.py").is_file(), package
    assert (out / "agent" / "personas").is_dir()
