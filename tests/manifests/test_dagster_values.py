"""The Dagster Helm values produce a valid production instance that matches the local one.

No Helm on these machines: ``chart_instance_config`` mirrors what the chart's
``configmap-instance.yaml`` template writes for the settings these values use (Postgres
storages, K8sRunLauncher, QueuedRunCoordinator, run monitoring, run retries), and Dagster's
own schemas validate the result: the instance schema, then each configurable class's config.
"""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.config import dagster_instance_config

from tests.manifests.render import MANIFESTS_DIR, NAMESPACE, REPO_ROOT

VALUES = MANIFESTS_DIR / "dagster" / "values.yaml"
GKE_VALUES = MANIFESTS_DIR / "overlays" / "gke" / "dagster-values.yaml"
RELEASE = "dagster"


def helm_merge(base: Any, override: Any) -> Any:
    """Helm's values merge: maps merge key by key, everything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = copy.deepcopy(base)
        for key, value in override.items():
            merged[key] = helm_merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    return copy.deepcopy(override)


def load_values(*files: Path) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in files:
        values = helm_merge(values, yaml.safe_load(path.read_text()))
    return values


def chart_instance_config(values: dict[str, Any]) -> dict[str, Any]:
    pg = values["postgresql"]
    postgres = {
        "postgres_db": {
            "username": pg["postgresqlUsername"],
            "password": {"env": "DAGSTER_PG_PASSWORD"},
            "hostname": pg["postgresqlHost"],
            "db_name": pg["postgresqlDatabase"],
            "port": pg["service"]["port"],
            "params": pg["postgresqlParams"],
        }
    }
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    run_launcher: dict[str, Any] = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "job_namespace": launcher["jobNamespace"] or NAMESPACE,
        "image_pull_policy": launcher["imagePullPolicy"],
        "service_account_name": values["serviceAccount"]["name"],
        "dagster_home": "/opt/dagster/dagster_home",
        "instance_config_map": f"{RELEASE}-instance",
        "postgres_password_secret": values["global"]["postgresqlSecretName"],
    }
    optional = {
        "envConfigMaps": ("env_config_maps", lambda v: [m["name"] for m in v]),
        "envSecrets": ("env_secrets", lambda v: [s["name"] for s in v]),
        "envVars": ("env_vars", list),
        "volumeMounts": ("volume_mounts", list),
        "volumes": ("volumes", list),
        "labels": ("labels", dict),
        "resources": ("resources", dict),
        "failPodOnRunFailure": ("fail_pod_on_run_failure", bool),
    }
    for key, (name, convert) in optional.items():
        if launcher.get(key):
            run_launcher[name] = convert(launcher[key])
    if launcher.get("runK8sConfig"):
        run_launcher["run_k8s_config"] = {
            {"jobSpecConfig": "job_spec_config", "podSpecConfig": "pod_spec_config"}[k]: v
            for k, v in launcher["runK8sConfig"].items()
        }
    daemon = values["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    monitoring = daemon["runMonitoring"]
    retries = daemon["runRetries"]
    instance = {
        "scheduler": {"module": "dagster._core.scheduler", "class": "DagsterDaemonScheduler"},
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            "config": postgres,
        },
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", "config": postgres},
        "event_log_storage": {
            "module": "dagster_postgres.event_log",
            "class": "PostgresEventLogStorage",
            "config": postgres,
        },
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": run_launcher},
        "run_coordinator": {
            "module": "dagster._core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {
                "max_concurrent_runs": queued["maxConcurrentRuns"],
                "tag_concurrency_limits": queued["tagConcurrencyLimits"],
            },
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": monitoring["startTimeoutSeconds"],
            "max_resume_run_attempts": monitoring["maxResumeRunAttempts"],
            "poll_interval_seconds": monitoring["pollIntervalSeconds"],
            "free_slots_after_run_end_seconds": monitoring["freeSlotsAfterRunEndSeconds"],
        },
        "run_retries": {"enabled": retries["enabled"], "max_retries": retries["maxRetries"]},
        "telemetry": {"enabled": values["telemetry"]["enabled"]},
    }
    logs = values.get("computeLogManager", {"type": "LocalComputeLogManager"})
    if logs["type"] == "GCSComputeLogManager":
        gcs = logs["config"]["gcsComputeLogManager"]
        instance["compute_logs"] = {
            "module": "dagster_gcp.gcs.compute_log_manager",
            "class": "GCSComputeLogManager",
            "config": {"bucket": gcs["bucket"], "prefix": gcs["prefix"]},
        }
    return instance


@pytest.fixture(params=["site-neutral", "gke"])
def values(request: pytest.FixtureRequest) -> dict[str, Any]:
    return load_values(VALUES) if request.param == "site-neutral" else load_values(VALUES, GKE_VALUES)


def test_values_make_a_valid_production_instance(
    values: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "placeholder")
    instance = chart_instance_config(values)
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(instance))
    validated, _ = dagster_instance_config(str(tmp_path))
    sections = ["run_storage", "event_log_storage", "schedule_storage", "run_launcher", "run_coordinator"]
    for key in [*sections, *(["compute_logs"] if "compute_logs" in validated else [])]:
        section = validated[key]
        klass = getattr(importlib.import_module(section["module"]), section["class"])
        result = process_config(resolve_to_config_type(klass.config_type()), section["config"])
        assert result.success, f"{key}: {[e.message for e in result.errors]}"
    assert validated["run_monitoring"]["enabled"] is True
    assert validated["run_retries"]["enabled"] is True and validated["run_retries"]["max_retries"] >= 1


def test_a_wrong_value_fails_dagsters_validation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The check above can fail: a misspelt run launcher setting is rejected by Dagster."""
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "placeholder")
    instance = chart_instance_config(load_values(VALUES))
    instance["run_launcher"]["config"]["job_namespaces"] = "x"
    klass = importlib.import_module("dagster_k8s").K8sRunLauncher
    result = process_config(resolve_to_config_type(klass.config_type()), instance["run_launcher"]["config"])
    assert not result.success


def test_run_queue_matches_the_local_instance(values: dict[str, Any]) -> None:
    local = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())["run_coordinator"]["config"]
    production = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    local_limits = {(t["key"], t["value"]): t["limit"] for t in local["tag_concurrency_limits"]}
    limits = {(t["key"], t["value"]): t["limit"] for t in production["tagConcurrencyLimits"]}
    assert (
        set(limits)
        == set(local_limits)
        == {
            ("callcenter/domain", "rollout"),
            ("callcenter/domain", "dialing"),
            ("callcenter/domain", "postcall"),
        }
    )
    # rollout and dialing are serialised everywhere: their correctness depends on it
    for domain in ("rollout", "dialing"):
        assert limits[("callcenter/domain", domain)] == local_limits[("callcenter/domain", domain)] == 1
    assert limits[("callcenter/domain", "postcall")] >= local_limits[("callcenter/domain", "postcall")]


def test_run_pods_may_reach_inference_and_postgres(values: dict[str, Any]) -> None:
    """The NetworkPolicies in manifests/base admit pods by these labels."""
    launcher_labels = values["runLauncher"]["config"]["k8sRunLauncher"]["labels"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    for labels in (launcher_labels, deployment["labels"]):
        assert labels["callcenter/inference-client"] == "true"
        assert labels["callcenter/postgres-client"] == "true"
    for component in ("dagsterWebserver", "dagsterDaemon"):
        assert values[component]["labels"]["callcenter/postgres-client"] == "true"
    assert values["postgresql"]["enabled"] is False and values["postgresql"]["postgresqlHost"] == "postgres"


def test_code_location_and_credentials(values: dict[str, Any]) -> None:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "orchestration.definitions"]
    assert deployment["image"]["tag"] not in ("latest", "", None)
    env = {e["name"]: e for e in deployment["env"]}
    assert env["CALLCENTER_DEPLOYMENT"]["value"] == "gke"
    for name, item in env.items():
        if any(word in name for word in ("KEY", "SECRET", "PASSWORD", "TOKEN")):
            assert "secretKeyRef" in item.get("valueFrom", {}), f"{name} is not read from a Secret"
    assert values["generatePostgresqlPasswordSecret"] is False


def test_gke_repeats_the_code_location_but_for_its_image() -> None:
    """Helm replaces lists, so the site file repeats the deployment entry: it may differ only in
    the image and the site's bucket and project."""
    (neutral,) = load_values(VALUES)["dagster-user-deployments"]["deployments"]
    (site,) = load_values(VALUES, GKE_VALUES)["dagster-user-deployments"]["deployments"]
    per_site = {
        "CALLCENTER_RECORDINGS_BUCKET",
        "GOOGLE_CLOUD_PROJECT",
        "CALLCENTER_SIP_NUMBERS",
        "CALLCENTER_TWILIO_TERMINATION_URI",
    }

    def shared(entry: dict[str, Any]) -> dict[str, Any]:
        env = [e for e in entry["env"] if e["name"] not in per_site]
        return {**{k: v for k, v in entry.items() if k != "image"}, "env": env}

    assert shared(site) == shared(neutral)
    assert [e["name"] for e in site["env"]] == [e["name"] for e in neutral["env"]]
    site_env = {e["name"]: e.get("value") for e in site["env"]}
    assert site_env["CALLCENTER_RECORDINGS_BUCKET"] == "call-center-recordings-hellojade"
    assert site_env["GOOGLE_CLOUD_PROJECT"] == "hello-jade"
    assert site["image"]["repository"] == "us-central1-docker.pkg.dev/hello-jade/call-center/orchestration"
    merged = load_values(VALUES, GKE_VALUES)
    assert merged["computeLogManager"]["config"]["gcsComputeLogManager"]["bucket"] == "call-center-recordings-hellojade"
    account = merged["serviceAccount"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert account.endswith("@hello-jade.iam.gserviceaccount.com")


def test_dsn_passwords_expand_from_an_earlier_secret(values: dict[str, Any]) -> None:
    """$(VAR) expands only from variables defined earlier in the list."""
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    defined: set[str] = set()
    for item in deployment["env"]:
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", item.get("value", "")):
            assert ref in defined, f"{item['name']} uses $({ref}) before it is defined"
        defined.add(item["name"])
    env = {e["name"]: e for e in deployment["env"]}
    for name in ("CALLCENTER_CALL_INDEX_DSN", "CALLCENTER_DIALING_DSN"):
        assert env[name]["value"].startswith("postgresql://dagster:$(DAGSTER_DB_PASSWORD)@postgres:5432/")


def test_the_databases_dagster_uses_are_created_by_the_bootstrap(values: dict[str, Any]) -> None:
    from tests.manifests.render import render_bootstrap

    init = next(o for o in render_bootstrap() if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "postgres-init")
    script = "\n".join(init["data"].values())
    created = set(re.findall(r"CREATE DATABASE (\w+) OWNER (\w+);", script))
    owner = values["postgresql"]["postgresqlUsername"]
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    dsn_databases = {e["value"].rsplit("/", 1)[1] for e in deployment["env"] if e["name"].endswith("_DSN")}
    assert {(db, owner) for db in {values["postgresql"]["postgresqlDatabase"], *dsn_databases}} <= created
    assert f"CREATE ROLE {owner} LOGIN" in script
