"""Inbound callers on a cluster hear the site's configured persona, never one of the repository's
demo personas: the overlay ships its personas as the ConfigMap the agent reads, and the site
value inbound-persona names one of them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from agent.personas import load_persona
from tests.manifests.render import OVERLAYS, find, render_overlay, site_values

DEMO_PERSONAS = Path(__file__).resolve().parents[2] / "agent" / "personas"


def _agent_env(objects) -> tuple[dict, dict]:
    config = find(objects, "ConfigMap", "agent-config")["data"]
    deployment = find(objects, "Deployment", "agent")
    return config, deployment["spec"]["template"]["spec"]


def _personas_configmap(objects, pod_spec) -> tuple[str, dict]:
    (volume,) = [v for v in pod_spec["volumes"] if v["name"] == "personas"]
    name = volume["configMap"]["name"]
    assert name.startswith("agent-personas-"), "generated with a hash suffix: a changed persona rolls the pods"
    return name, find(objects, "ConfigMap", name)["data"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_agent_reads_the_sites_inbound_persona_from_the_overlays_personas(overlay: str, tmp_path) -> None:
    objects = render_overlay(overlay)
    config, pod_spec = _agent_env(objects)
    inbound = site_values(overlay)["inbound-persona"]
    assert config["INBOUND_PERSONA"] == inbound
    (agent,) = [c for c in pod_spec["containers"] if c["name"] == "agent"]
    (mount,) = [m for m in agent["volumeMounts"] if m["name"] == "personas"]
    assert mount["mountPath"] == config["PERSONAS_DIR"] and mount.get("readOnly")

    _, files = _personas_configmap(objects, pod_spec)
    for filename, text in files.items():  # as the pod sees them: one file per key
        (tmp_path / filename).write_text(text)
    persona = load_persona(inbound, tmp_path)  # validates it as the agent does (greeting discloses automation)
    assert persona.recording_disclosure, "a recorded line must say so"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_cluster_speaks_as_a_demo_persona(overlay: str) -> None:
    objects = render_overlay(overlay)
    _, pod_spec = _agent_env(objects)
    _, files = _personas_configmap(objects, pod_spec)
    demo_businesses = {yaml.safe_load(p.read_text())["business_name"] for p in DEMO_PERSONAS.glob("*.yaml")}
    for filename, text in files.items():
        assert yaml.safe_load(text)["business_name"] not in demo_businesses, f"{overlay}: {filename} is a demo persona"
