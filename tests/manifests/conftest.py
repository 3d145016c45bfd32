from __future__ import annotations

import pytest

from tests.manifests.render import BOOTSTRAP, OVERLAYS, KubeObject, RenderError, render_bootstrap, render_overlay


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[KubeObject]]:
    """Every overlay and the bootstrap, rendered once per test session (read-only by convention)."""
    try:
        return {**{name: render_overlay(name) for name in OVERLAYS}, BOOTSTRAP: render_bootstrap()}
    except RenderError as exc:
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def gke(rendered: dict[str, list[KubeObject]]) -> list[KubeObject]:
    return rendered["gke"]
