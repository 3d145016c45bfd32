"""Riva's model repository is provisioned by the manifests, with the models the code asks for.

The init container's script runs here for real (bash) against a directory standing in for the
model repository volume, with a stand-in for Riva's ``download_and_deploy_ngc_models`` on PATH
that records its calls (the real one needs NGC and a GPU).
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from callcenter import riva as riva_models
from tests.manifests.render import MANIFESTS_DIR, KubeObject, find

RIVA_IMAGE = "nvcr.io/nvidia/riva/riva-speech"


def _pod(gke: list[KubeObject]) -> KubeObject:
    return find(gke, "Deployment", "riva-stt")["spec"]["template"]["spec"]


def _env(container: KubeObject) -> dict[str, KubeObject]:
    return {e["name"]: e for e in container.get("env", [])}


def test_the_init_container_deploys_the_rmirs_of_the_models_the_code_asks_for(gke: list[KubeObject]) -> None:
    rmirs = find(gke, "ConfigMap", "riva-model-init")["data"]["RIVA_RMIRS"].split()
    assert sorted(rmirs) == sorted(m.ngc_path for m in riva_models.DEPLOYED)
    pod = _pod(gke)
    (init,) = pod["initContainers"]
    server = pod["containers"][0]
    # the RMIRs' version is the image's: riva-deploy output is tied to the server that loads it
    assert init["image"] == server["image"] == f"{RIVA_IMAGE}:{riva_models.RIVA_VERSION}"
    assert {m["mountPath"] for m in init["volumeMounts"]} >= {"/data"}
    assert next(v for v in pod["volumes"] if v["name"] == "model-repository")["persistentVolumeClaim"]
    # riva-deploy builds TensorRT engines on the GPU that serves them: the init container has it
    assert init["resources"]["limits"]["nvidia.com/gpu"] == "1"


def test_the_ngc_key_comes_from_a_secret(gke: list[KubeObject]) -> None:
    env = _env(_pod(gke)["initContainers"][0])
    key = env["NGC_CLI_API_KEY"]
    assert "value" not in key
    assert key["valueFrom"]["secretKeyRef"] == {"name": "ngc-api-key", "key": "api-key", "optional": True}


def test_no_manifest_names_another_asr_model() -> None:
    """The model name has one home (callcenter/riva.py): no ConfigMap or Helm value overrides it."""
    for path in MANIFESTS_DIR.rglob("*.yaml"):
        setting = re.search(r"\b(RIVA_MODEL|riva_model|RIVA_LANGUAGE)\b", path.read_text())
        assert setting is None, f"{path.relative_to(MANIFESTS_DIR)} sets {setting[0]}: callcenter/riva.py names it"


# --- the script, run ------------------------------------------------------------------------
@pytest.fixture
def script(gke: list[KubeObject], tmp_path: Path) -> Path:
    path = tmp_path / "riva-model-init.sh"
    path.write_text(find(gke, "ConfigMap", "riva-model-init")["data"]["riva-model-init.sh"])
    return path


def _stand_in_tool(bin_dir: Path, fail: bool = False) -> Path:
    """Records its arguments and deploys one directory per RMIR, like Riva's tool (or fails)."""
    bin_dir.mkdir(exist_ok=True)
    calls = bin_dir / "calls.log"
    tool = bin_dir / "download_and_deploy_ngc_models"
    body = f'echo "$@" >> "{calls}"\n'
    body += "exit 3\n" if fail else 'for m in "$@"; do n="${m##*/}"; mkdir -p "$MODEL_REPOSITORY/${n%%:*}"; done\n'
    tool.write_text("#!/bin/bash\n" + body)
    tool.chmod(0o755)
    return calls


def _run(
    script: Path, repo: Path, bin_dir: Path, rmirs: str, key: str | None = "nvapi-test"
) -> subprocess.CompletedProcess:
    env = {"PATH": f"{bin_dir}:{os.environ['PATH']}", "MODEL_REPOSITORY": str(repo), "RIVA_RMIRS": rmirs}
    if key is not None:
        env["NGC_CLI_API_KEY"] = key
    return subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=30)


def _rmirs(gke: list[KubeObject]) -> str:
    return find(gke, "ConfigMap", "riva-model-init")["data"]["RIVA_RMIRS"]


def test_first_start_deploys_and_a_restart_skips(gke: list[KubeObject], script: Path, tmp_path: Path) -> None:
    repo, bin_dir = tmp_path / "data" / "models", tmp_path / "bin"
    calls = _stand_in_tool(bin_dir)
    first = _run(script, repo, bin_dir, _rmirs(gke))
    assert first.returncode == 0, first.stderr
    assert calls.read_text().split() == _rmirs(gke).split()
    assert {p.name for p in repo.iterdir() if not p.name.startswith(".")} == {m.rmir for m in riva_models.DEPLOYED}

    again = _run(script, repo, bin_dir, _rmirs(gke), key=None)  # no key needed once built
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert len(calls.read_text().splitlines()) == 1  # NGC was not asked again


def test_a_changed_model_list_deploys_again(gke: list[KubeObject], script: Path, tmp_path: Path) -> None:
    repo, bin_dir = tmp_path / "models", tmp_path / "bin"
    calls = _stand_in_tool(bin_dir)
    assert _run(script, repo, bin_dir, "nvidia/riva/rmir_old:2.16.0").returncode == 0
    assert _run(script, repo, bin_dir, _rmirs(gke)).returncode == 0
    assert len(calls.read_text().splitlines()) == 2


def test_an_empty_repository_without_the_key_fails_naming_the_secret(
    gke: list[KubeObject], script: Path, tmp_path: Path
) -> None:
    repo, bin_dir = tmp_path / "models", tmp_path / "bin"
    calls = _stand_in_tool(bin_dir)
    result = _run(script, repo, bin_dir, _rmirs(gke), key=None)
    assert result.returncode != 0
    assert "ngc-api-key" in result.stderr
    assert not calls.exists()


def test_a_failed_deploy_leaves_no_marker_so_the_next_start_retries(
    gke: list[KubeObject], script: Path, tmp_path: Path
) -> None:
    repo, bin_dir = tmp_path / "models", tmp_path / "bin"
    _stand_in_tool(bin_dir, fail=True)
    assert _run(script, repo, bin_dir, _rmirs(gke)).returncode != 0
    assert not (repo / ".callcenter-rmirs").exists()
    calls = _stand_in_tool(bin_dir)
    assert _run(script, repo, bin_dir, _rmirs(gke)).returncode == 0
    assert len(calls.read_text().splitlines()) == 2  # the failed attempt, then the retry
    assert (repo / ".callcenter-rmirs").exists()


def test_the_manifest_says_how_the_repository_is_filled() -> None:
    readme = (MANIFESTS_DIR / "README.md").read_text()
    assert "riva-model-init" in readme
