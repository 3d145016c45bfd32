"""The dialing domain: outbound campaigns -> dialable contacts -> dial ledger -> dispatch.

Exposes ``defs`` (assets, check, jobs, schedule) and ``resources(deployment)``: the
ledger store (SQLite under CALLCENTER_DATA_DIR locally, PostgreSQL from
CALLCENTER_DIALING_DSN on GKE) and the fleet's call capacity; the campaign catalog is shared
(orchestration/resources).
"""

from __future__ import annotations

from typing import Any

import dagster as dg

from orchestration.defs.dialing.assets import (
    abandonment_rate_under_limit,
    campaign_contacts,
    dial_ledger,
    dialable_contacts,
    do_not_call_list,
)
from orchestration.defs.dialing.jobs import (
    campaign_control,
    dialing_dry_run_job,
    dialing_tick_job,
    dialing_tick_schedule,
    load_campaigns_job,
)
from orchestration.defs.dialing.resources import CallCapacity, DialLedgerStore
from orchestration.deployment import Deployment

defs = dg.Definitions(
    assets=[campaign_contacts, do_not_call_list, dialable_contacts, dial_ledger],
    asset_checks=[abandonment_rate_under_limit],
    jobs=[load_campaigns_job, dialing_dry_run_job, dialing_tick_job, campaign_control],
    schedules=[dialing_tick_schedule],
)


def resources(deployment: Deployment) -> dict[str, Any]:
    match deployment:
        case Deployment.LOCAL:
            return {
                "dial_ledger_store": DialLedgerStore(data_dir=dg.EnvVar("CALLCENTER_DATA_DIR")),
                # faster-whisper, llama.cpp and Piper on one CPU box: one call at a time.
                "call_capacity": CallCapacity(stt_calls=1, llm_calls=1, tts_calls=1, recorder_calls=1),
            }
        case Deployment.GKE:
            return {
                "dial_ledger_store": DialLedgerStore(postgres_dsn=dg.EnvVar("CALLCENTER_DIALING_DSN")),
                # One L4 each for Riva, vLLM and Chatterbox, two Egress pods: 25 calls until
                # measured (docs/capacity.md); raise these with the measured figures. TTS is
                # read each tick from the Chatterbox pod's own measured capacity (one replica:
                # list every pod's /metrics when there are more).
                "call_capacity": CallCapacity(
                    stt_calls=50,
                    llm_calls=25,
                    tts_calls=25,
                    recorder_calls=32,
                    tts_metrics_urls=["http://chatterbox-tts.call-center.svc.cluster.local:8880/metrics"],
                ),
            }
    raise ValueError(f"unknown deployment {deployment!r}")
