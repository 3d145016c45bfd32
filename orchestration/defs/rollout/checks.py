"""Health gates (blocking: a failure keeps everything downstream unmaterialized) and drift
checks (warnings: the live cluster differs from what the manifests render)."""


import asyncio
import time
from typing import Any

import dagster as dg
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from livekit import api as livekit_api

from orchestration.defs.rollout.apply import drift, read_live
from orchestration.defs.rollout.kube import KubernetesResource
from orchestration.defs.rollout.manifests import ManifestError, group_by_asset, secret_references
from orchestration.defs.rollout.probes import InferenceEndpoints, ProbeResult
from orchestration.defs.rollout.rollout_status import wait_rolled_out
from orchestration.defs.rollout.settings import RolloutSettings
from orchestration.defs.rollout.trunks import SipTrunkSettings
from orchestration.defs.rollout.workloads import APPLIED_ASSETS, FOUNDATION, WORKLOADS, Probe, Workload
from orchestration.resources.livekit import LiveKitResource

ERROR = dg.AssetCheckSeverity.ERROR
WORKER_REGISTERED = "registered worker"  # livekit-agents logs this once the server accepted the worker


def _failed(description: str, metadata: dict[str, Any] | None = None) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, severity=ERROR, description=description, metadata=metadata or {})


def _render(settings: RolloutSettings) -> dict[str, list[dict[str, Any]]]:
    try:
        return group_by_asset(settings.render())
    except ManifestError as e:
        raise dg.Failure(description=str(e)) from e


# --- namespace_and_secrets ------------------------------------------------------------------
@dg.asset_check(
    asset=FOUNDATION,
    name="referenced_secrets_exist",
    blocking=True,
    description="Every Secret (and key) a workload or the outbound trunk reads exists in the cluster.",
)
def referenced_secrets_exist(
    rollout_settings: RolloutSettings, kubernetes: KubernetesResource, sip_trunks: SipTrunkSettings
) -> dg.AssetCheckResult:
    objects = [o for group in _render(rollout_settings).values() for o in group]
    wanted: dict[tuple[str, str], dict[str, Any]] = {}
    for ref in secret_references(objects):
        if ref.optional:
            continue
        entry = wanted.setdefault((ref.namespace, ref.secret), {"keys": set(), "by": set()})
        if ref.key:
            entry["keys"].add(ref.key)
        entry["by"].add(ref.referenced_by)
    trunk = wanted.setdefault(
        (rollout_settings.namespace, sip_trunks.credentials_secret), {"keys": set(), "by": set()}
    )
    trunk["keys"] |= {"username", "password"}
    trunk["by"].add("asset outbound_trunk")

    missing: list[str] = []
    with kubernetes.connect() as (api, _):
        core = client.CoreV1Api(api)
        for (namespace, name), entry in sorted(wanted.items()):
            who = ", ".join(sorted(entry["by"]))
            try:
                secret = core.read_namespaced_secret(name, namespace, _request_timeout=rollout_settings.request_timeout_s)
            except ApiException as e:
                if e.status != 404:
                    raise
                missing.append(f"Secret {namespace}/{name} (needed by {who})")
                continue
            present = set((secret.data or {}).keys()) | set((secret.string_data or {}).keys())
            for key in sorted(entry["keys"] - present):
                missing.append(f"key {key!r} in Secret {namespace}/{name} (needed by {who})")
    metadata = {"secrets_checked": len(wanted), "secrets": ", ".join(f"{ns}/{n}" for ns, n in sorted(wanted))}
    if missing:
        return _failed(
            "missing: " + "; ".join(missing) + ". Create them with kubectl create secret (docs/rollout.md).",
            {**metadata, "missing": dg.MetadataValue.json(missing)},
        )
    return dg.AssetCheckResult(passed=True, metadata=metadata)


# --- workloads: rolled out, then answering ---------------------------------------------------
def _probe_livekit(livekit: LiveKitResource) -> ProbeResult:
    async def run() -> ProbeResult:
        start = time.perf_counter()
        async with livekit.client() as lk:
            rooms = await lk.room.list_rooms(livekit_api.ListRoomsRequest())
        return ProbeResult(
            True,
            "LiveKit answers list_rooms with our API key",
            {"list_rooms_ms": round((time.perf_counter() - start) * 1000, 1), "rooms": len(rooms.rooms)},
        )

    try:
        return asyncio.run(run())
    except livekit_api.TwirpError as e:
        return ProbeResult(False, f"LiveKit list_rooms failed: {e.code} {e.message}")
    except OSError as e:
        return ProbeResult(False, f"LiveKit at {livekit.url} is unreachable: {e}")


def _probe_agent(api: client.ApiClient, objects: list[dict[str, Any]], settings: RolloutSettings) -> ProbeResult:
    core = client.CoreV1Api(api)
    metadata: dict[str, Any] = {}
    hpas = [o for o in objects if o["kind"] == "HorizontalPodAutoscaler"]
    autoscaling = client.AutoscalingV2Api(api)
    for hpa in hpas:
        try:
            autoscaling.read_namespaced_horizontal_pod_autoscaler(
                hpa["metadata"]["name"], hpa["metadata"]["namespace"], _request_timeout=settings.request_timeout_s
            )
        except ApiException as e:
            if e.status == 404:
                return ProbeResult(False, f"HorizontalPodAutoscaler {hpa['metadata']['name']} is missing")
            raise
    metadata["hpas"] = len(hpas)
    registered: list[str] = []
    checked: list[str] = []
    for deployment in (o for o in objects if o["kind"] == "Deployment"):
        ns = deployment["metadata"]["namespace"]
        labels = deployment["spec"]["selector"].get("matchLabels", {})
        selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
        pods = core.list_namespaced_pod(ns, label_selector=selector, _request_timeout=settings.request_timeout_s)
        for pod in pods.items:
            pod_labels = pod.metadata.labels or {}
            if any(pod_labels.get(k) != v for k, v in labels.items()):
                continue
            checked.append(pod.metadata.name)
            log = core.read_namespaced_pod_log(
                pod.metadata.name, ns, tail_lines=500, _request_timeout=settings.request_timeout_s
            )
            if WORKER_REGISTERED in (log or ""):
                registered.append(pod.metadata.name)
    metadata["pods_checked"] = ", ".join(checked)
    metadata["registered_pods"] = ", ".join(registered)
    if not registered:
        return ProbeResult(
            False,
            f"no agent worker has registered with LiveKit (no {WORKER_REGISTERED!r} in the logs of {checked or 'any pod'}): "
            "check LIVEKIT_URL and the API key Secret the agent reads",
            metadata,
        )
    return ProbeResult(True, f"{len(registered)} agent worker(s) registered with LiveKit", metadata)


def _health_check(workload: Workload) -> dg.AssetChecksDefinition:
    what = {
        Probe.RIVA: "gRPC health SERVING and a short recognition",
        Probe.VLLM: "/v1/models lists the model and a one-token completion succeeds",
        Probe.TTS: "/ready and a short synthesis",
        Probe.LIVEKIT: "LiveKit answers list_rooms with the API key",
        Probe.AGENT: "the HPA exists and a worker registered with LiveKit",
        Probe.NONE: "",
    }[workload.probe]

    @dg.asset_check(
        asset=workload.asset,
        name="rolled_out_and_answering",
        blocking=True,
        description="Observed generation current and every replica available" + (f"; then {what}." if what else "."),
    )
    def _check(
        rollout_settings: RolloutSettings,
        kubernetes: KubernetesResource,
        inference_endpoints: InferenceEndpoints,
        livekit: LiveKitResource,
    ) -> dg.AssetCheckResult:
        objects = _render(rollout_settings)[workload.asset]
        settings = rollout_settings
        with kubernetes.connect() as (api, dyn):
            rollout = wait_rolled_out(
                dyn,
                objects,
                timeout_s=settings.rollout_timeout_s,
                poll_interval_s=settings.poll_interval_s,
                request_timeout_s=settings.request_timeout_s,
                events_per_pod=settings.events_per_pod,
            )
            metadata: dict[str, Any] = {
                "rollout_seconds": round(rollout.seconds, 3),
                "workloads": dg.MetadataValue.json({p.ref: p.detail for p in rollout.progress}),
            }
            if not rollout.ok:
                metadata["unhealthy_pods"] = dg.MetadataValue.json(rollout.unhealthy)
                return _failed(rollout.failure_message(settings.rollout_timeout_s), metadata)
            match workload.probe:
                case Probe.RIVA:
                    probe = inference_endpoints.probe_riva()
                case Probe.VLLM:
                    probe = inference_endpoints.probe_vllm()
                case Probe.TTS:
                    probe = inference_endpoints.probe_tts()
                case Probe.LIVEKIT:
                    probe = _probe_livekit(livekit)
                case Probe.AGENT:
                    probe = _probe_agent(api, objects, settings)
                case _:
                    probe = ProbeResult(True, "rolled out")
        metadata.update(probe.metadata)
        if not probe.passed:
            return _failed(probe.description, metadata)
        return dg.AssetCheckResult(passed=True, description=probe.description, metadata=metadata)

    return _check


# --- trunks: exactly one of each, by name ---------------------------------------------------
def _trunk_check(asset: str, kind: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name="exists_exactly_once",
        blocking=True,
        description=f"LiveKit lists exactly one {kind} with the configured name.",
    )
    def _check(sip_trunks: SipTrunkSettings, livekit: LiveKitResource) -> dg.AssetCheckResult:
        async def names() -> list[str]:
            async with livekit.client() as lk:
                if asset == "inbound_trunk":
                    items = (await lk.sip.list_inbound_trunk(livekit_api.ListSIPInboundTrunkRequest())).items
                elif asset == "outbound_trunk":
                    items = (await lk.sip.list_outbound_trunk(livekit_api.ListSIPOutboundTrunkRequest())).items
                else:
                    items = (await lk.sip.list_dispatch_rule(livekit_api.ListSIPDispatchRuleRequest())).items
                return [i.name for i in items]

        name = {
            "inbound_trunk": sip_trunks.inbound_trunk_name,
            "outbound_trunk": sip_trunks.outbound_trunk_name,
            "dispatch_rule": sip_trunks.dispatch_rule_name,
        }[asset]
        count = asyncio.run(names()).count(name)
        if count != 1:
            return _failed(f"LiveKit lists {count} {kind}s named {name!r}; expected exactly one", {"count": count})
        return dg.AssetCheckResult(passed=True, metadata={"count": count, "name": name})

    return _check


# --- drift: the live cluster against the rendered manifests ----------------------------------
def _drift_check(asset: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=asset,
        name="matches_manifests",
        blocking=False,
        description="Every object this asset applies exists in the cluster with the rendered values.",
    )
    def _check(rollout_settings: RolloutSettings, kubernetes: KubernetesResource) -> dg.AssetCheckResult:
        objects = [o for o in _render(rollout_settings)[asset] if o["kind"] != "Secret"]
        drifted: dict[str, str] = {}
        with kubernetes.connect() as (_, dyn):
            for obj in objects:
                live = read_live(dyn, obj, rollout_settings.request_timeout_s)
                diff = drift(obj, live, rollout_settings.field_manager)
                if diff:
                    state = "missing" if live is None else "differs"
                    drifted[f"{obj['kind']}/{obj['metadata']['name']} ({state})"] = diff
        metadata: dict[str, Any] = {"objects_compared": len(objects), "drifted": len(drifted)}
        if drifted:
            text = "".join(drifted.values())
            metadata["diff"] = dg.MetadataValue.md(f"```diff\n{text.rstrip()}\n```")
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"{len(drifted)} object(s) differ from the manifests: {', '.join(drifted)}",
                metadata=metadata,
            )
        return dg.AssetCheckResult(passed=True, metadata=metadata)

    return _check


HEALTH_CHECKS = [referenced_secrets_exist, *(_health_check(w) for w in WORKLOADS)]
TRUNK_CHECKS = [
    _trunk_check("inbound_trunk", "inbound trunk"),
    _trunk_check("outbound_trunk", "outbound trunk"),
    _trunk_check("dispatch_rule", "dispatch rule"),
]
DRIFT_CHECKS = [_drift_check(asset) for asset in APPLIED_ASSETS]
ALL_CHECKS = [*HEALTH_CHECKS, *TRUNK_CHECKS, *DRIFT_CHECKS]
