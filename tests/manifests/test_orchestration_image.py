"""orchestration/Dockerfile, read without a Docker engine: pinned bases, a non-root user, no
secrets, every COPY source present, and packages that cover what the shipped code imports."""

from __future__ import annotations

import ast
import importlib.metadata
import json
import re
import sys
from pathlib import Path

import pytest
import yaml

from orchestration.image_requirements import (
    EXCLUDED,
    MISSING_FROM_LOCK,
    canonical,
    requirement_name,
    runtime_requirements,
)
from tests.manifests.render import REPO_ROOT, find, render_overlay
from tests.manifests.test_dagster_values import VALUES, load_values

DOCKERFILE = REPO_ROOT / "orchestration" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / "orchestration" / "Dockerfile.dockerignore"
LOCK = REPO_ROOT / "requirements" / "dev.lock"
SECRET_WORD = re.compile(r"(KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)", re.IGNORECASE)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue  # a comment inside a continued instruction
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        command, _, args = (pending + line).partition(" ")
        result.append((command.upper(), args.strip()))
        pending = ""
    return result


@pytest.fixture(scope="module")
def steps() -> list[tuple[str, str]]:
    return instructions(DOCKERFILE.read_text())


def _args(steps: list[tuple[str, str]]) -> dict[str, str]:
    return {name: value for kind, args in steps if kind == "ARG" for name, _, value in [args.partition("=")] if value}


def _stages(steps: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for step in steps:
        if step[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(step)
    return stages


def test_instruction_parser_joins_continuations() -> None:
    parsed = instructions("FROM a:1\n# c\nRUN x \\\n    # inner\n    && y\nUSER 1\n")
    assert parsed == [("FROM", "a:1"), ("RUN", "x  && y"), ("USER", "1")]


def test_every_base_image_is_pinned_python_3_11_slim(steps: list[tuple[str, str]]) -> None:
    args = _args(steps)
    stage_names = set()
    for kind, value in steps:
        if kind != "FROM":
            continue
        image, _, alias = value.partition(" AS ")
        image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image.strip())
        name, _, tag = image.rpartition(":")
        assert name and tag and tag != "latest", f"FROM {image} is not pinned"
        assert name == "python" and re.fullmatch(r"3\.11\.\d+-slim-\w+", tag), f"FROM {image}: python:3.11.N-slim-*"
        stage_names.add(alias.strip())
    assert re.fullmatch(r"v\d+\.\d+\.\d+", args["KUBECTL_VERSION"]), "kubectl is a pinned release"


def test_final_stage_runs_as_the_numeric_user_the_manifests_expect(steps: list[tuple[str, str]]) -> None:
    final = _stages(steps)[-1]
    users = [args for kind, args in final if kind == "USER"]
    assert users, "the image runs as root"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit() and int(uid) != 0, "runAsNonRoot needs a numeric non-root USER"
    assert gid.isdigit() and int(gid) != 0
    pod = find(render_overlay("gke"), "Deployment", "call-browser")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == int(uid)
    assert pod["securityContext"]["runAsGroup"] == int(gid)


def test_no_secrets_enter_the_image(steps: list[tuple[str, str]]) -> None:
    for kind, args in steps:
        if kind in ("ENV", "ARG"):
            names = re.findall(r"(?:^|\s)([A-Za-z_][A-Za-z0-9_]*)=", " " + args) or [args.split("=")[0]]
            assert not [n for n in names if SECRET_WORD.search(n)], f"{kind} {args} bakes a secret into the image"
        if kind in ("COPY", "ADD"):
            assert not re.search(r"(\.env\b|credentials|\.json\b|\.pem\b|\.key\b|kubeconfig)", args), args
    assert "*" in DOCKERIGNORE.read_text().splitlines(), "the build context is an allow-list"


def test_every_copy_source_exists_and_the_context_admits_it(steps: list[tuple[str, str]]) -> None:
    allowed = [line[1:].rstrip("/") for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")]
    copied = []
    for kind, args in steps:
        if kind == "ADD":
            pytest.fail("use COPY (ADD fetches URLs and unpacks archives)")
        if kind != "COPY" or args.startswith("--from="):
            continue
        *sources, _ = args.split()
        for source in sources:
            path = REPO_ROOT / source
            assert path.exists(), f"COPY {source}: no such path in the repository"
            assert any(source.rstrip("/") == a or source.startswith(a + "/") for a in allowed), (
                f"COPY {source} is left out of the build context by {DOCKERIGNORE.name}"
            )
            copied.append(source.rstrip("/"))
    assert {"callcenter", "callindex", "orchestration", "browser", "manifests"} <= set(copied)


def test_the_default_command_is_the_helm_code_location(steps: list[tuple[str, str]]) -> None:
    cmd = json.loads(next(args for kind, args in reversed(steps) if kind == "CMD"))
    (deployment,) = load_values(VALUES)["dagster-user-deployments"]["deployments"]
    assert cmd[:3] == ["dagster", "api", "grpc"]
    assert cmd[cmd.index("-p") + 1] == str(deployment["port"])
    assert cmd[-2:] == deployment["dagsterApiGrpcArgs"]
    assert not [kind for kind, _ in steps if kind == "ENTRYPOINT"], "the chart and the run launcher pass full args"
    assert "kubectl" in DOCKERFILE.read_text() and "sha256sum --check" in DOCKERFILE.read_text()


# --- packages ----------------------------------------------------------------------------------

SHIPPED = ("callcenter", "callindex", "orchestration", "browser")


def _module_level_imports(path: Path) -> set[str]:
    """Top-level names imported when the module loads (not inside functions)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in tree.body:
        stack = [node]
        while stack:
            item = stack.pop()
            if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(item, ast.Import):
                names |= {alias.name.split(".")[0] for alias in item.names}
            elif isinstance(item, ast.ImportFrom) and item.level == 0 and item.module:
                names.add(item.module.split(".")[0])
            stack.extend(ast.iter_child_nodes(item))
    return names


def test_excluded_packages_are_in_the_lock_and_the_filter_drops_only_them() -> None:
    lock = LOCK.read_text()
    locked = {requirement_name(line) for line in lock.splitlines()} - {None}
    excluded = {canonical(n) for n in EXCLUDED}
    assert excluded <= locked, f"stale exclusions: {excluded - locked}"
    kept = {requirement_name(line) for line in runtime_requirements(lock).splitlines()} - {None}
    extra = {canonical(n) for n in MISSING_FROM_LOCK} - locked
    assert kept == (locked - excluded) | extra
    for name, version in MISSING_FROM_LOCK.items():
        if canonical(name) not in locked:
            # the pin is what the tests ran with
            assert importlib.metadata.version(name) == version, f"{name}: pin the dev environment's version"
    assert {"dagster", "dagster-k8s", "dagster-gcp", "dagster-postgres", "torch", "sentence-transformers"} <= kept


def test_what_the_shipped_code_imports_at_load_is_installed_in_the_image() -> None:
    distributions = importlib.metadata.packages_distributions()
    kept = {requirement_name(line) for line in runtime_requirements(LOCK.read_text()).splitlines()} - {None}
    stdlib = set(sys.stdlib_module_names)
    missing: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in (REPO_ROOT / package).rglob("*.py"):
            for name in _module_level_imports(path) - stdlib:
                if name in SHIPPED:
                    continue
                dists = {canonical(d) for d in distributions.get(name, [])}
                assert dists, f"{path.relative_to(REPO_ROOT)} imports {name!r}, which is neither shipped nor installed"
                if not dists & kept:
                    missing.setdefault(name, set()).add(str(path.relative_to(REPO_ROOT)))
    assert not missing, f"imported at load but left out of the image: {missing}"


def test_the_browser_runs_from_this_image() -> None:
    objects = render_overlay("gke")
    container = find(objects, "Deployment", "call-browser")["spec"]["template"]["spec"]["containers"][0]
    module = container["command"][-1]
    assert (REPO_ROOT / module / "__main__.py").is_file() and module in SHIPPED
    # the rollout in the image renders the manifests it ships
    assert yaml.safe_load((REPO_ROOT / "manifests" / "overlays" / "gke" / "kustomization.yaml").read_text())


# --- the shipped tree alone ------------------------------------------------------------------------

_LOAD_AS_IN_THE_IMAGE = """
import importlib.abc, json, sys

BLOCKED = set(json.loads(sys.argv[1]))

class LeftOutOfTheImage(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is not installed in the orchestration image")
        return None

sys.meta_path.insert(0, LeftOutOfTheImage())
from orchestration.definitions import defs
from orchestration.defs.rollout.manifests import MissingSiteValues, render_overlay
from orchestration.defs.rollout.settings import RolloutSettings
from browser.main import create_app

settings = RolloutSettings(overlay="gke")
try:
    settings.render()
    refused = ""
except MissingSiteValues as exc:  # the first site's SIP IPs and IAP values are not known yet
    refused = str(exc)
objects = render_overlay(settings.overlay_dir(), require_site_values=False)
print(json.dumps({
    "overlay_dir": str(settings.overlay_dir()),
    "refused": refused,
    "objects": len(objects),
    "jobs": sorted(j.name for j in defs.resolve_all_job_defs()),
    "browser": type(create_app).__name__,
}))
"""


def test_the_copied_tree_loads_the_gke_code_location_without_the_left_out_packages(
    steps: list[tuple[str, str]], tmp_path: Path
) -> None:
    """Only what the Dockerfile copies, at /app's layout, with the excluded distributions'
    modules made unimportable: the gke code location loads and the rollout renders its overlay."""
    import os
    import shutil
    import subprocess

    app = tmp_path / "app"
    for kind, args in steps:
        if kind == "COPY" and not args.startswith("--from="):
            *sources, target = args.split()
            if target.startswith("/app/"):
                for source in sources:
                    shutil.copytree(
                        REPO_ROOT / source, app / source.rstrip("/"), ignore=shutil.ignore_patterns("__pycache__")
                    )
    excluded = {canonical(n) for n in EXCLUDED}
    blocked = sorted(
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if {canonical(d) for d in dists} <= excluded
    )
    assert {"faster_whisper", "llama_cpp", "pytest", "kmock"} <= set(blocked)
    # first-party folders the image does not copy (the dev install's editable finder would
    # otherwise still find them in the checkout)
    blocked += ["devstack", "agent", "tts", "bench", "tests", "scripts"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CALLCENTER_", "PYTHON"))}
    env.update(CALLCENTER_DEPLOYMENT="gke", PYTHONPATH=str(app), PYTHONWARNINGS="ignore", HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-c", _LOAD_AS_IN_THE_IMAGE, json.dumps(blocked)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["overlay_dir"] == str(app / "manifests" / "overlays" / "gke")
    assert report["objects"] == len(render_overlay("gke"))
    assert not report["refused"] or "site values not supplied" in report["refused"], report["refused"]
    assert "rollout" in report["jobs"]
