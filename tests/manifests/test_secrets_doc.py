"""Every Secret the manifests and the Dagster values read is created by a documented command
in docs/secrets.md, with the keys they read."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pytest
import yaml

from tests.manifests.render import MANIFESTS_DIR, RENDERS, REPO_ROOT, KubeObject, containers, pod_templates

SECRETS_DOC = REPO_ROOT / "docs" / "secrets.md"
CREATE = re.compile(r"create secret generic ([a-z0-9-]+)")


def documented_secrets() -> dict[str, set[str]]:
    """Secret name -> keys, from each `kubectl create secret generic` command (with its
    backslash-continued lines) in docs/secrets.md."""
    secrets: dict[str, set[str]] = defaultdict(set)
    lines = SECRETS_DOC.read_text().splitlines()
    for i, line in enumerate(lines):
        match = CREATE.search(line)
        if not match:
            continue
        command = [line]
        while command[-1].rstrip().endswith("\\") and i + len(command) < len(lines):
            command.append(lines[i + len(command)])
        secrets[match.group(1)] |= set(re.findall(r"--from-literal=([a-z0-9-]+)=", " ".join(command)))
    return secrets


def documented_pull_secrets() -> set[str]:
    return set(re.findall(r"create secret docker-registry ([a-z0-9-]+)", SECRETS_DOC.read_text()))


def _secret_refs(node: Any) -> set[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    if isinstance(node, dict):
        if "secretKeyRef" in node:
            refs.add((node["secretKeyRef"]["name"], node["secretKeyRef"]["key"]))
        for value in node.values():
            refs |= _secret_refs(value)
    elif isinstance(node, list):
        for value in node:
            refs |= _secret_refs(value)
    return refs


def referenced_secrets(objects: list[KubeObject]) -> set[tuple[str, str]]:
    refs: set[tuple[str, str]] = set()
    for _, template in pod_templates(objects):
        for c in containers(template["spec"]):
            refs |= _secret_refs(c.get("env", []))
    for obj in objects:
        if obj["kind"] == "GatewayConfig":
            refs |= {(obj["spec"]["authRef"]["name"], key) for key in ("type", "username", "password")}
        iap = obj["spec"].get("default", {}).get("iap", {}) if obj["kind"] == "GCPBackendPolicy" else {}
        if iap.get("oauth2ClientSecret"):
            # GKE reads the OAuth client secret from the key `key`
            refs.add((iap["oauth2ClientSecret"]["name"], "key"))
    return refs


def test_the_documented_commands_are_found() -> None:
    secrets = documented_secrets()
    assert secrets["livekit-api-keys"] == {"api-key", "api-secret"}
    assert "plaintext" not in {v for v in re.findall(r"--from-literal=type=(\S+)", SECRETS_DOC.read_text())}


@pytest.mark.parametrize("overlay", RENDERS)
def test_every_secret_the_manifests_read_is_documented(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    documented = documented_secrets()
    refs = referenced_secrets(rendered[overlay])
    expected = (
        {"postgres-auth", "dagster-postgresql-secret"}
        if overlay == "bootstrap"
        else {
            "livekit-api-keys",
            "stunner-auth",
            "hf-token",
        }
    )
    assert {name for name, _ in refs} >= expected
    missing = sorted(f"{name}/{key}" for name, key in refs if key not in documented.get(name, set()))
    assert not missing, f"docs/secrets.md creates no such secret keys: {missing}"


def test_every_secret_the_dagster_values_read_is_documented() -> None:
    documented = documented_secrets()
    values = yaml.safe_load((MANIFESTS_DIR / "dagster" / "values.yaml").read_text())
    refs = _secret_refs(values) | {(values["global"]["postgresqlSecretName"], "postgresql-password")}
    missing = sorted(f"{name}/{key}" for name, key in refs if key not in documented.get(name, set()))
    assert not missing, f"docs/secrets.md creates no such secret keys: {missing}"


def test_no_secret_value_is_committed_under_manifests() -> None:
    for path in MANIFESTS_DIR.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict):
                assert doc.get("kind") != "Secret", f"{path} holds a Secret"


@pytest.mark.parametrize("overlay", RENDERS)
def test_every_image_pull_secret_is_documented(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    pulls = {ref["name"] for _, t in pod_templates(rendered[overlay]) for ref in t["spec"].get("imagePullSecrets", [])}
    assert pulls <= documented_pull_secrets(), f"undocumented image pull secrets: {pulls - documented_pull_secrets()}"
    if overlay != "bootstrap":
        assert "ngc-registry" in pulls, "Riva's image needs an NGC login"
