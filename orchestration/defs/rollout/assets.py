"""The rollout as assets, upstream first: namespace_and_secrets -> GPU inference -> LiveKit
-> SIP trunks -> agent_workers. Each workload asset applies its rendered objects; its
blocking health check (checks.py) must pass before anything downstream runs."""


import asyncio
import base64
import hashlib
import os
import time
from collections.abc import Sequence

import dagster as dg
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from livekit import api as livekit_api

from orchestration.defs.rollout.apply import apply_objects
from orchestration.defs.rollout.kube import KubernetesResource
from orchestration.defs.rollout.manifests import ManifestError, dump, images
from orchestration.defs.rollout.settings import RolloutSettings
from orchestration.defs.rollout.trunks import (
    SipTrunkSettings,
    TrunkOutcome,
    desired_dispatch_rule,
    desired_inbound,
    desired_outbound,
    sync_dispatch_rule,
    sync_inbound_trunk,
    sync_outbound_trunk,
)
from orchestration.defs.rollout.workloads import FOUNDATION, GPU_INFERENCE, WORKLOAD_BY_ASSET
from orchestration.resources.livekit import LiveKitResource

GROUP = "rollout"


def _code_block(text: str, lang: str = "diff") -> dg.MetadataValue:
    return dg.MetadataValue.md(f"```{lang}\n{text.rstrip()}\n```")


def apply_asset(
    context: dg.AssetExecutionContext, asset: str, settings: RolloutSettings, kubernetes: KubernetesResource
) -> dg.MaterializeResult:
    kubernetes.require_configured()
    start = time.perf_counter()
    try:
        objects = settings.objects_for(asset)
    except ManifestError as e:
        raise dg.Failure(description=str(e)) from e
    rendered_s = time.perf_counter() - start
    with kubernetes.connect() as (_, dyn):
        try:
            report = apply_objects(dyn, objects, settings.field_manager, settings.request_timeout_s)
        except ManifestError as e:
            raise dg.Failure(description=str(e)) from e
    context.log.info(f"{asset}: {report.summary()}")
    return dg.MaterializeResult(
        metadata={
            "summary": report.summary(),
            "changed_objects": len(report.changed),
            "objects": dg.MetadataValue.json({o.ref: o.action for o in report.outcomes}),
            "diff": _code_block(report.diff) if report.diff else dg.MetadataValue.text("no change"),
            "images": dg.MetadataValue.json(images(objects)),
            "overlay": settings.overlay,
            "render_seconds": round(rendered_s, 3),
            "apply_seconds": round(time.perf_counter() - start - rendered_s, 3),
        },
        # The rendered objects' hash: the UI shows the asset stale when the manifests move.
        data_version=dg.DataVersion(hashlib.sha256(dump(objects).encode()).hexdigest()[:16]),
    )


def _applied_asset(name: str, deps: Sequence[str], description: str) -> dg.AssetsDefinition:
    @dg.asset(name=name, deps=list(deps), group_name=GROUP, description=description, kinds={"kubernetes"})
    def _asset(
        context: dg.AssetExecutionContext, rollout_settings: RolloutSettings, kubernetes: KubernetesResource
    ) -> dg.MaterializeResult:
        return apply_asset(context, name, rollout_settings, kubernetes)

    return _asset


namespace_and_secrets = _applied_asset(
    FOUNDATION, [], "The call-center namespace, service accounts and RBAC; its check proves every referenced Secret exists."
)
riva_stt, vllm_llm, chatterbox_tts = (
    _applied_asset(w.asset, [FOUNDATION], w.description) for w in GPU_INFERENCE
)
_GPU = [w.asset for w in GPU_INFERENCE]
redis = _applied_asset("redis", _GPU, WORKLOAD_BY_ASSET["redis"].description)
livekit_server = _applied_asset("livekit_server", ["redis"], WORKLOAD_BY_ASSET["livekit_server"].description)
livekit_egress = _applied_asset("livekit_egress", ["livekit_server"], WORKLOAD_BY_ASSET["livekit_egress"].description)
livekit_sip = _applied_asset("livekit_sip", ["livekit_server"], WORKLOAD_BY_ASSET["livekit_sip"].description)
agent_workers = _applied_asset(
    "agent_workers",
    ["dispatch_rule", "outbound_trunk", "livekit_egress"],
    WORKLOAD_BY_ASSET["agent_workers"].description,
)
# its HTTPRoute attaches to the Gateway that livekit_server applies
call_browser = _applied_asset("call_browser", ["livekit_server"], WORKLOAD_BY_ASSET["call_browser"].description)


# --- SIP trunks through livekit-api ---------------------------------------------------------
def _trunk_result(outcome: TrunkOutcome, **extra: object) -> dg.MaterializeResult:
    metadata: dict[str, object] = {"action": outcome.action, "name": outcome.name, "id": outcome.id, **extra}
    if outcome.duplicates:
        # Made by hand or by an older tool; we never create them and leave them for a person.
        metadata["duplicates_left_alone"] = ", ".join(outcome.duplicates)
    return dg.MaterializeResult(metadata=metadata)


@dg.asset(
    deps=["livekit_sip"],
    group_name=GROUP,
    kinds={"livekit"},
    description="Twilio -> LiveKit inbound trunk: our numbers, INVITEs only from Twilio's signalling ranges.",
)
def inbound_trunk(
    context: dg.AssetExecutionContext, sip_trunks: SipTrunkSettings, livekit: LiveKitResource
) -> dg.MaterializeResult:
    sip_trunks.require("phone_numbers")
    desired = desired_inbound(sip_trunks)

    async def run() -> TrunkOutcome:
        async with livekit.client() as lk:
            return await sync_inbound_trunk(lk, desired)

    outcome = asyncio.run(run())
    context.log.info(f"inbound trunk {outcome.name}: {outcome.action} ({outcome.id})")
    return _trunk_result(
        outcome, numbers=", ".join(desired.numbers), allowed_addresses=", ".join(desired.allowed_addresses)
    )


def env_trunk_credentials() -> tuple[str, str]:
    names = ("CALLCENTER_SIP_TRUNK_USERNAME", "CALLCENTER_SIP_TRUNK_PASSWORD")
    values = [os.environ.get(n, "") for n in names]
    missing = [n for n, v in zip(names, values, strict=True) if not v]
    if missing:
        raise dg.Failure(description="SIP trunk credentials missing: set " + ", ".join(missing))
    return values[0], values[1]


def read_trunk_credentials(kubernetes: KubernetesResource, namespace: str, secret: str) -> tuple[str, str]:
    with kubernetes.connect() as (api, _):
        try:
            found = client.CoreV1Api(api).read_namespaced_secret(secret, namespace)
        except ApiException as e:
            if e.status == 404:
                raise dg.Failure(
                    description=f"Secret {namespace}/{secret} with keys username and password (the Twilio trunk's "
                    "credential list) is missing: create it as docs/rollout.md shows"
                ) from None
            raise
    data = found.data or {}
    missing = [k for k in ("username", "password") if not data.get(k)]
    if missing:
        raise dg.Failure(description=f"Secret {namespace}/{secret} lacks keys: {', '.join(missing)}")
    return base64.b64decode(data["username"]).decode(), base64.b64decode(data["password"]).decode()


@dg.asset(
    deps=["livekit_sip"],
    group_name=GROUP,
    kinds={"livekit"},
    description="LiveKit -> Twilio outbound trunk: the termination URI, authenticated with credentials from a Secret.",
)
def outbound_trunk(
    context: dg.AssetExecutionContext,
    sip_trunks: SipTrunkSettings,
    livekit: LiveKitResource,
    kubernetes: KubernetesResource,
    rollout_settings: RolloutSettings,
) -> dg.MaterializeResult:
    sip_trunks.require("phone_numbers", "termination_uri")
    livekit.require_configured()
    if sip_trunks.credentials_from_env:
        username, password = env_trunk_credentials()
        source = "the environment (local stack)"
    else:
        username, password = read_trunk_credentials(kubernetes, rollout_settings.namespace, sip_trunks.credentials_secret)
        source = f"Secret {sip_trunks.credentials_secret}"
    desired = desired_outbound(sip_trunks, username, password)

    async def run() -> TrunkOutcome:
        async with livekit.client() as lk:
            return await sync_outbound_trunk(lk, desired)

    outcome = asyncio.run(run())
    context.log.info(f"outbound trunk {outcome.name}: {outcome.action} ({outcome.id})")
    return _trunk_result(outcome, address=desired.address, credentials_from=source)


@dg.asset(
    deps=["inbound_trunk"],
    group_name=GROUP,
    kinds={"livekit"},
    description="Every inbound call gets its own room and the agent dispatched into it by name.",
)
def dispatch_rule(
    context: dg.AssetExecutionContext, sip_trunks: SipTrunkSettings, livekit: LiveKitResource
) -> dg.MaterializeResult:
    async def run() -> TrunkOutcome:
        async with livekit.client() as lk:
            trunks = await lk.sip.list_inbound_trunk(livekit_api.ListSIPInboundTrunkRequest())
            ids = [t.sip_trunk_id for t in trunks.items if t.name == sip_trunks.inbound_trunk_name]
            if not ids:
                raise dg.Failure(
                    description=f"inbound trunk {sip_trunks.inbound_trunk_name!r} does not exist: materialize inbound_trunk first"
                )
            return await sync_dispatch_rule(lk, desired_dispatch_rule(sip_trunks, ids[0]))

    outcome = asyncio.run(run())
    context.log.info(f"dispatch rule {outcome.name}: {outcome.action} ({outcome.id})")
    return _trunk_result(outcome, agent_name=sip_trunks.agent_name, room_prefix=sip_trunks.room_prefix)


APPLIED = [
    namespace_and_secrets,
    riva_stt,
    vllm_llm,
    chatterbox_tts,
    redis,
    livekit_server,
    livekit_egress,
    livekit_sip,
    agent_workers,
    call_browser,
]
TRUNKS = [inbound_trunk, outbound_trunk, dispatch_rule]
ALL_ASSETS = [*APPLIED, *TRUNKS]
