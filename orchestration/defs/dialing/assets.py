"""Dialing assets: campaign_contacts -> dialable_contacts -> dial_ledger, and the DNC list."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from callcenter.campaign import CampaignFile
from orchestration.defs.dialing.contacts import ContactList, ContactListError, read_table, validate_contacts
from orchestration.defs.dialing.dialer import (
    Clock,
    DialingError,
    DialingTick,
    TickBusy,
    TickSettings,
)
from orchestration.defs.dialing.dnc import import_registry, registry_location
from orchestration.defs.dialing.ledger import DialStore
from orchestration.defs.dialing.outcomes import ListReports, ReadReport
from orchestration.defs.dialing.planner import ABANDONMENT_LIMIT, ABANDONMENT_WINDOW, Plan
from orchestration.defs.dialing.resources import CallCapacity, DialLedgerStore
from orchestration.resources.campaigns import CampaignCatalog
from orchestration.resources.livekit import LiveKitResource
from orchestration.resources.storage import RecordingsBucket

GROUP = "dialing"
DOMAIN_TAGS = {"callcenter/domain": "dialing"}
REPORTED_OUTCOMES = (
    "answered",
    "voicemail",
    "no_answer",
    "busy",
    "failed",
    "declined",
    "wrong_number",
    "do_not_call",
    "transferred",
)


class DryRunConfig(dg.Config):
    at: str | None = None  # ISO time to plan for ("2026-11-26T14:00:00Z"); default now
    campaign_ids: list[str] | None = None


class TickConfig(dg.Config):
    campaign_ids: list[str] | None = None


def utc_clock(at: str | None = None) -> Clock:
    if at is None:
        return lambda: datetime.now(UTC)
    fixed = datetime.fromisoformat(at.replace("Z", "+00:00"))
    if fixed.tzinfo is None:
        raise dg.Failure(description=f"dry-run time {at!r} needs a UTC offset, e.g. {at}Z")
    return lambda: fixed


def bucket_lister(bucket: RecordingsBucket) -> ListReports:
    return bucket.list_objects


def bucket_reader(bucket: RecordingsBucket) -> ReadReport:
    return bucket.read_if_present


def fetch_contact_list(cf: CampaignFile, bucket: RecordingsBucket | None = None) -> ContactList:
    """A campaign's contact list, from a local path or gs:// (read with the recordings bucket's client)."""
    location = cf.resolve(cf.campaign.contacts)
    data = None
    if location.startswith("gs://"):
        if bucket is None:
            raise ContactListError(f"contact list {location} is in a bucket and no bucket client was given")
        data = bucket.read_uri(location)
    return validate_contacts(read_table(location, data), cf.campaign.default_region)


def _rejected_table(cid: str, rows: list, limit: int = 50) -> str:
    lines = ["| campaign | row | contact | value | reason |", "|---|---|---|---|---|"]
    lines += [f"| {cid} | {r.row} | {r.contact_id or ''} | {r.value or ''} | {r.reason} |" for r in rows[:limit]]
    if len(rows) > limit:
        lines.append(f"| {cid} | ... | | | {len(rows) - limit} more |")
    return "\n".join(lines)


@dg.asset(group_name=GROUP, kinds={"python"}, tags=DOMAIN_TAGS)
def campaign_contacts(
    context: dg.AssetExecutionContext,
    dial_ledger_store: DialLedgerStore,
    campaign_catalog: CampaignCatalog,
    recordings_bucket: RecordingsBucket,
) -> dg.MaterializeResult:
    """Each campaign's contact list, numbers normalised to E.164 and validated, duplicates
    removed. Invalid and duplicate rows are listed in the metadata, never dropped silently."""
    catalog = campaign_catalog.load()
    meta: dict[str, object] = {"campaigns": len(catalog)}
    rejected: list[str] = []
    with dial_ledger_store.open() as store:
        for cid, cf in sorted(catalog.items()):
            lst = fetch_contact_list(cf, recordings_bucket)
            store.replace_contacts(cid, lst.contacts)
            meta[f"{cid}/rows"] = lst.rows
            meta[f"{cid}/valid"] = len(lst.contacts)
            meta[f"{cid}/invalid"] = len(lst.invalid)
            meta[f"{cid}/duplicates"] = len(lst.duplicates)
            meta[f"{cid}/time_zone_from_number"] = sum(1 for c in lst.contacts if c.zone_source == "number")
            # The list's zone is not one the number can be in: called only when inside the window in both.
            meta[f"{cid}/time_zone_conflicts"] = sum(1 for c in lst.contacts if c.zone_source == "list+number")
            if lst.invalid or lst.duplicates:
                rejected.append(_rejected_table(cid, lst.invalid + lst.duplicates))
                context.log.warning(
                    f"campaign {cid}: {len(lst.invalid)} invalid and {len(lst.duplicates)} duplicate rows"
                )
    meta["rejected_rows"] = dg.MetadataValue.md("\n\n".join(rejected) or "none")
    return dg.MaterializeResult(metadata=meta)


class RegistryImportConfig(dg.Config):
    accept_shrink: list[str] = Field(
        default_factory=list,
        description="registry files (paths or gs:// URIs) whose large drop in numbers is intended: "
        "imported as they are instead of held",
    )


@dg.asset(group_name=GROUP, kinds={"python"}, tags=DOMAIN_TAGS)
def do_not_call_list(
    context: dg.AssetExecutionContext,
    config: RegistryImportConfig,
    dial_ledger_store: DialLedgerStore,
    campaign_catalog: CampaignCatalog,
    recordings_bucket: RecordingsBucket,
) -> dg.MaterializeResult:
    """Suppression: operator registry files imported into the ledger, next to the internal
    list that calls feed (do-not-call requests made to the agent). Fails closed: a file that
    cannot be read is recorded as failed and its campaigns dial nobody until it imports; a
    re-import that would drop many numbers keeps the previous list. Either fails this step,
    after every other file has been imported."""
    catalog = campaign_catalog.load()
    # Each file is read in the regions of the campaigns it serves; the shared ones in all of them.
    all_regions = {cf.campaign.default_region for cf in catalog.values()} or {"US"}
    regions: dict[str, set[str]] = {registry_location(p): set(all_regions) for p in campaign_catalog.registry_files}
    for cf in catalog.values():
        for p in cf.campaign.dnc_registry:
            regions.setdefault(registry_location(cf.resolve(p)), set()).add(cf.campaign.default_region)
    accepted = {registry_location(p) for p in config.accept_shrink}
    meta: dict[str, object] = {}
    problems: list[str] = []
    now = datetime.now(UTC)
    with dial_ledger_store.open() as store:
        for location in sorted(regions):
            outcome = import_registry(
                store,
                location,
                regions[location],
                now,
                read_gs=lambda uri: recordings_bucket.read_uri(uri),  # None locally: gs:// fails the import
                accept_shrink=location in accepted,
            )
            meta[f"{outcome.source}/status"] = outcome.status
            if outcome.detail:
                meta[f"{outcome.source}/detail"] = outcome.detail
            if outcome.status != "imported":
                problems.append(f"{location}: {outcome.status}: {outcome.detail}")
        counts = store.do_not_call_counts()
    meta.update({f"numbers/{src}": n for src, n in sorted(counts.items())})
    meta["numbers/total_entries"] = sum(counts.values())
    if problems:
        # Recorded in the ledger already (the tick blocks failed registries' campaigns): say it loudly.
        raise dg.Failure(
            description="do-not-call registries not imported as read:\n" + "\n".join(problems),
            metadata=meta,
            allow_retries=False,
        )
    return dg.MaterializeResult(metadata=meta)


def plan_metadata(plans: dict[str, Plan]) -> dict[str, object]:
    meta: dict[str, object] = {}
    lines = ["| campaign | contact | number | decision | why |", "|---|---|---|---|---|"]
    for cid, plan in plans.items():
        meta[f"{cid}/would_dial"] = len(plan.selected)
        meta[f"{cid}/free_capacity"] = plan.capacity.free
        meta[f"{cid}/skipped"] = dg.MetadataValue.json(plan.skip_counts)
        lines += [
            f"| {cid} | {s.contact.contact_id} | {s.contact.phone_number} | dial | {s.why} |"
            for s in plan.selected[:25]
        ]
        shown: Counter[str] = Counter()
        for s in plan.skipped:
            if shown[s.reason] < 3:
                shown[s.reason] += 1
                lines.append(f"| {cid} | {s.contact_id} | {s.phone_number} | skip: {s.reason.value} | {s.detail} |")
    meta["explanation"] = dg.MetadataValue.md("\n".join(lines))
    return meta


@dg.asset(group_name=GROUP, kinds={"python"}, tags=DOMAIN_TAGS, deps=[campaign_contacts, do_not_call_list])
def dialable_contacts(
    context: dg.AssetExecutionContext,
    config: DryRunConfig,
    dial_ledger_store: DialLedgerStore,
    campaign_catalog: CampaignCatalog,
    call_capacity: CallCapacity,
) -> dg.MaterializeResult:
    """Who the next tick would dial, and why every other contact would not be (the dry run:
    reads the ledger, dials nobody, needs no LiveKit)."""
    global_limit, limit_source = _call_limit(context, call_capacity)
    with dial_ledger_store.open() as store:
        tick = _tick(
            store,
            campaign_catalog.load(),
            None,
            lambda _name: None,
            call_capacity,
            utc_clock(config.at),
            global_limit=global_limit,
            registry_files=campaign_catalog.registry_files,
        )
        plans = tick.dry_run(config.campaign_ids)
    for plan in plans.values():
        context.log.info(plan.explain())
    return dg.MaterializeResult(metadata={**plan_metadata(plans), "tts_capacity_source": limit_source})


def _call_limit(context: dg.AssetExecutionContext, capacity: CallCapacity) -> tuple[int, str]:
    """The fleet's call limit for this run, the same in the dry run and the tick."""
    global_limit, source = capacity.current_limit()
    if source.startswith("configured:"):
        context.log.warning(f"TTS capacity not measured this run, using the configured figure: {source}")
    return global_limit, source


def _tick(
    store: DialStore,
    catalog: dict[str, CampaignFile],
    lk,
    read: ReadReport,
    capacity: CallCapacity,
    clock: Clock,
    *,
    global_limit: int,
    holder: str | None = None,
    list_reports: ListReports | None = None,
    registry_files: list[str] | None = None,
) -> DialingTick:
    settings = TickSettings(
        global_limit=global_limit,
        max_call_duration=timedelta(minutes=capacity.max_call_minutes),
        parallelism=capacity.parallel_dispatches,
    )
    return DialingTick(
        store,
        catalog,
        lk,
        read,
        settings,
        clock,
        holder=holder,
        list_reports=list_reports,
        registry_files=registry_files or (),
    )


def ledger_metadata(store: DialStore, campaign_ids: list[str], now: datetime) -> dict[str, object]:
    meta: dict[str, object] = {}
    for cid in campaign_ids:
        counts = store.outcome_counts(cid)
        meta[f"{cid}/dialed"] = sum(counts.values())
        for outcome in REPORTED_OUTCOMES:
            meta[f"{cid}/{outcome}"] = counts.get(outcome, 0)
        meta[f"{cid}/in_progress"] = counts.get("dispatched", 0) + counts.get("sending", 0) + counts.get("reserved", 0)
        abandoned, answered = store.abandonment(cid, now - ABANDONMENT_WINDOW)
        meta[f"{cid}/abandonment_rate_30d"] = round(abandoned / answered, 4) if answered else 0.0
    return meta


@dg.asset(group_name=GROUP, kinds={"python"}, tags=DOMAIN_TAGS, deps=[dialable_contacts])
def dial_ledger(
    context: dg.AssetExecutionContext,
    config: TickConfig,
    dial_ledger_store: DialLedgerStore,
    campaign_catalog: CampaignCatalog,
    call_capacity: CallCapacity,
    livekit: LiveKitResource,
    recordings_bucket: RecordingsBucket,
) -> dg.MaterializeResult:
    """Every dial attempt with its outcome. Materialising it runs one dialing tick: close
    finished calls from their session reports, reconcile crashed attempts, dial up to capacity."""
    livekit.require_configured()  # fail fast, naming the settings, before touching the ledger
    catalog = campaign_catalog.load()
    clock = utc_clock()
    global_limit, limit_source = _call_limit(context, call_capacity)
    with dial_ledger_store.open() as store:

        async def run():
            async with livekit.client() as lk:
                tick = _tick(
                    store,
                    catalog,
                    lk,
                    bucket_reader(recordings_bucket),
                    call_capacity,
                    clock,
                    holder=context.run_id,
                    global_limit=global_limit,
                    list_reports=bucket_lister(recordings_bucket),
                    registry_files=campaign_catalog.registry_files,
                )
                return await tick.run(config.campaign_ids)

        try:
            result = asyncio.run(run())
        except TickBusy as e:
            # Overlapping schedule ticks are expected now and then: skip, don't page anyone.
            context.log.warning(str(e))
            return dg.MaterializeResult(metadata={"skipped": str(e)})
        except DialingError as e:
            raise dg.Failure(description=str(e)) from e
        meta = ledger_metadata(store, sorted(result.plans), clock())
    for cid, plan in result.plans.items():
        meta[f"{cid}/dialed_this_tick"] = result.dialed[cid]
        meta[f"{cid}/skipped_this_tick"] = dg.MetadataValue.json(plan.skip_counts)
    meta["closed_this_tick"] = dg.MetadataValue.json(dict(result.sweep.closed))
    meta["do_not_call_requests"] = len(result.sweep.do_not_call)
    meta["recovered_attempts"] = len(result.recovered) + len(result.redialed)
    meta["live_calls_before_tick"] = result.global_live
    meta["global_call_limit"] = global_limit
    meta["tts_capacity_source"] = limit_source
    if result.sweep.unreadable:
        context.log.warning(f"unreadable session reports: {result.sweep.unreadable[:5]}")
    return dg.MaterializeResult(metadata=meta)


@dg.asset_check(
    asset=dial_ledger,
    blocking=False,
    description="answered calls with no agent speech within 2 s stay under 3% per campaign over 30 days",
)
def abandonment_rate_under_limit(
    dial_ledger_store: DialLedgerStore, campaign_catalog: CampaignCatalog
) -> dg.AssetCheckResult:
    now = datetime.now(UTC)
    rates: dict[str, float] = {}
    with dial_ledger_store.open() as store:
        for cid in sorted(campaign_catalog.load()):
            abandoned, answered = store.abandonment(cid, now - ABANDONMENT_WINDOW)
            rates[cid] = abandoned / answered if answered else 0.0
    over = {cid: r for cid, r in rates.items() if r >= ABANDONMENT_LIMIT}
    return dg.AssetCheckResult(
        passed=not over,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"rates": dg.MetadataValue.json({k: round(v, 4) for k, v in rates.items()}), "over_limit": list(over)},
    )
