"""Every environment variable the code location reads on GKE is set by the Helm values.

The list is not written down here: a subprocess loads ``orchestration.definitions`` with
CALLCENTER_DEPLOYMENT=gke (as the code server in the cluster does) and reports each
``dg.EnvVar`` in the config of every resource it binds, so a resource that starts reading a
new variable fails this test until the values set it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from tests.manifests.render import REPO_ROOT
from tests.manifests.test_dagster_values import GKE_VALUES, VALUES, load_values

_REPORT_ENV_VARS = """
import json
from orchestration.definitions import defs

def env_names(config):
    if isinstance(config, dict):
        if set(config) == {"env"} and isinstance(config["env"], str):
            yield config["env"]
        for value in config.values():
            yield from env_names(value)
    elif isinstance(config, list):
        for value in config:
            yield from env_names(value)

found = {}
for key, resource in defs.resources.items():
    to_config = getattr(resource, "_convert_to_config_dictionary", None)
    if to_config is None:
        raise SystemExit(f"resource {key!r} ({type(resource).__name__}) is not a ConfigurableResource")
    for name in env_names(to_config()):
        found.setdefault(name, []).append(key)
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def gke_env_vars() -> dict[str, list[str]]:
    """EnvVar name -> the resources that read it, from the code location loaded for gke."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLCENTER_")}
    env.update(CALLCENTER_DEPLOYMENT="gke", PYTHONPATH=str(REPO_ROOT), PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-c", _REPORT_ENV_VARS],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, f"loading the gke code location failed:\n{proc.stderr[-3000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _helm_env(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return {e["name"]: e for e in deployment["env"]}


def test_the_walk_finds_the_known_variables(gke_env_vars: dict[str, list[str]]) -> None:
    """The discovery itself works: variables we know the gke resources read are found."""
    assert gke_env_vars["CALLCENTER_KUBE_CONTEXT"] == ["kubernetes"]
    assert gke_env_vars["CALLCENTER_CAMPAIGNS_DIR"] == ["campaign_catalog"]
    assert {"LIVEKIT_API_SECRET", "CALLCENTER_CALL_INDEX_DSN", "CALLCENTER_SIP_NUMBERS"} <= set(gke_env_vars)
    # local-only settings are not read on gke
    assert "STORAGE_EMULATOR_HOST" not in gke_env_vars and "CALLCENTER_DATA_DIR" not in gke_env_vars


@pytest.mark.parametrize("files", [(VALUES,), (VALUES, GKE_VALUES)], ids=["site-neutral", "gke"])
def test_every_env_var_the_gke_resources_read_is_set(gke_env_vars: dict[str, list[str]], files: tuple) -> None:
    env = _helm_env(load_values(*files))
    missing = {name: readers for name, readers in gke_env_vars.items() if name not in env}
    assert not missing, f"the Helm values set no such variable (name: resources reading it): {missing}"
    assert env["CALLCENTER_KUBE_CONTEXT"]["value"] == "in-cluster"


def test_campaigns_dir_is_the_mounted_config_map() -> None:
    (deployment,) = load_values(VALUES, GKE_VALUES)["dagster-user-deployments"]["deployments"]
    directory = _helm_env(load_values(VALUES, GKE_VALUES))["CALLCENTER_CAMPAIGNS_DIR"]["value"]
    mounts = {m["mountPath"]: m["name"] for m in deployment["volumeMounts"]}
    volume = next(v for v in deployment["volumes"] if v["name"] == mounts[directory])
    assert volume["configMap"]["name"] == "dialing-campaigns"
    # the code location must start before a site has any campaign
    assert volume["configMap"]["optional"] is True
    assert deployment["includeConfigInLaunchedRuns"]["enabled"], "run pods would lack the campaigns"
