"""Jobs and schedules of the dialing domain; every run is tagged ``callcenter/domain: dialing``."""

import asyncio
from datetime import UTC, datetime

import dagster as dg

from orchestration.defs.dialing.assets import (
    DOMAIN_TAGS,
    campaign_contacts,
    dial_ledger,
    dialable_contacts,
    do_not_call_list,
)
from orchestration.defs.dialing.controls import ControlAction, apply_control, hang_up
from orchestration.defs.dialing.resources import DialLedgerStore
from orchestration.resources.campaigns import CampaignCatalog
from orchestration.resources.livekit import LiveKitResource

load_campaigns_job = dg.define_asset_job(
    "load_campaigns",
    selection=[campaign_contacts, do_not_call_list],
    tags=DOMAIN_TAGS,
    description="Validate and load every campaign's contact list and the do-not-call registry files.",
)

dialing_dry_run_job = dg.define_asset_job(
    "dialing_dry_run",
    selection=[dialable_contacts],
    tags=DOMAIN_TAGS,
    description="Who would be dialled now (or at config.at) and why the others would not. Dials nobody.",
)

dialing_tick_job = dg.define_asset_job(
    "dialing_tick",
    selection=[dial_ledger],
    tags=DOMAIN_TAGS,
    description="One dialing tick: close finished calls, reconcile crashed attempts, dial up to capacity.",
)

# Every minute: capacity frees as calls end, and windows open at different minutes across
# time zones. Stopped by default: an operator turns dialing on deliberately.
dialing_tick_schedule = dg.ScheduleDefinition(
    name="dialing_tick_every_minute",
    job=dialing_tick_job,
    cron_schedule="* * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
    tags=DOMAIN_TAGS,
)


class CampaignControlConfig(dg.Config):
    campaign_id: str
    action: ControlAction
    reason: str = "operator"
    hang_up_live_calls: bool = False  # with action=stop: end calls in progress now


@dg.op(tags=DOMAIN_TAGS)
def change_campaign_state(
    context: dg.OpExecutionContext,
    config: CampaignControlConfig,
    dial_ledger_store: DialLedgerStore,
    campaign_catalog: CampaignCatalog,
    livekit: LiveKitResource,
) -> None:
    catalog = campaign_catalog.load()
    if config.campaign_id not in catalog:
        raise dg.Failure(description=f"unknown campaign {config.campaign_id!r}; known: {', '.join(sorted(catalog))}")
    with dial_ledger_store.open() as store:
        live = apply_control(store, config.campaign_id, config.action, config.reason, datetime.now(UTC))
    context.log.info(f"campaign {config.campaign_id}: {config.action.value} ({len(live)} calls in progress)")
    if config.action is ControlAction.STOP and config.hang_up_live_calls and live:

        async def end_calls() -> int:
            async with livekit.client() as lk:
                return await hang_up(lk, live)

        context.log.info(f"hung up {asyncio.run(end_calls())} calls")


@dg.job(tags=DOMAIN_TAGS, description="Pause, resume or stop a campaign (config: campaign_id, action).")
def campaign_control() -> None:
    change_campaign_state()
