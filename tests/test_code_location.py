"""Load the whole code location with placeholder environment and assert its shape."""

from __future__ import annotations

import importlib

import dagster as dg
import pytest


@pytest.fixture
def definitions(monkeypatch: pytest.MonkeyPatch) -> dg.Definitions:
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", "local")
    import orchestration.definitions as module

    return importlib.reload(module).defs


def test_code_location_loads(definitions: dg.Definitions) -> None:
    repo = definitions.get_repository_def()
    assert repo.get_all_jobs() is not None


@pytest.mark.parametrize("deployment", ["local", "gke"])
def test_every_deployment_builds_resources(monkeypatch: pytest.MonkeyPatch, deployment: str) -> None:
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", deployment)
    import orchestration.definitions as module

    defs = importlib.reload(module).defs
    assert {"recordings_bucket", "livekit"} <= set(defs.resources)


def test_unknown_deployment_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CALLCENTER_DEPLOYMENT", "staging")
    import orchestration.definitions as module

    with pytest.raises(ValueError, match="CALLCENTER_DEPLOYMENT='staging'.*local, gke"):
        importlib.reload(module)
