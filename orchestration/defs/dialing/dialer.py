"""One dialing tick, as its sequence of steps: close finished calls (``outcomes.py``), suppress
the numbers of do-not-call requests (``outcomes.py``), settle what a crashed run left reserved
(``recovery.py``), then per campaign plan (``planner.py``), reserve and dispatch (``dispatch.py``).

Exactly once: an attempt row is committed (``reserved``) before ``CreateDispatch`` and marked
``dispatched`` after; the next tick reconciles a run that died in between. Ticks never
overlap (a lease in the ledger, renewed before every dial and every recovered row), so
capacity counts hold.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from livekit import api

from callcenter.campaign import Campaign, CampaignFile
from callcenter.ids import is_call_id
from orchestration.defs.dialing import dnc
from orchestration.defs.dialing.dispatch import dispatch, reserve
from orchestration.defs.dialing.ledger import DialStore
from orchestration.defs.dialing.outcomes import (
    ListReports,
    OutcomeSweep,
    ReadReport,
    sweep_inbound_do_not_call,
    sweep_outcomes,
)
from orchestration.defs.dialing.planner import Plan, Selection, plan_from_ledger
from orchestration.defs.dialing.recovery import reconcile_reserved
from orchestration.defs.webhooks.campaign_events import campaign_finished_if_settled

Clock = Callable[[], datetime]

LEASE_NAME = "dialing-tick"


class DialingError(RuntimeError):
    pass


class TickBusy(DialingError):
    """Another tick holds the ledger lease (a slow tick overlapping the next schedule)."""


@dataclass(frozen=True)
class TickSettings:
    global_limit: int  # concurrent calls the inference fleet can carry
    max_call_duration: timedelta = timedelta(hours=2)
    recovery_window: timedelta = timedelta(minutes=10)
    lease_ttl: timedelta = timedelta(minutes=2)
    parallelism: int = 8


@dataclass
class TickResult:
    plans: dict[str, Plan] = field(default_factory=dict)
    dialed: Counter[str] = field(default_factory=Counter)  # campaign -> dispatches created
    not_dialed: Counter[str] = field(default_factory=Counter)  # "<campaign>:<why>" for selections dropped at dial time
    recovered: list[str] = field(default_factory=list)  # reserved attempts found already dispatched
    redialed: list[str] = field(default_factory=list)  # reserved attempts dispatched by this tick
    expired: list[str] = field(default_factory=list)
    # Dispatches sent whose answer never came and that left no trace yet: never sent again.
    unconfirmed: list[str] = field(default_factory=list)
    sweep: OutcomeSweep = field(default_factory=OutcomeSweep)
    global_live: int = 0


class DialingTick:
    def __init__(
        self,
        store: DialStore,
        campaigns: dict[str, CampaignFile],
        lk: api.LiveKitAPI | None,
        read_report: ReadReport,
        settings: TickSettings,
        clock: Clock,
        holder: str | None = None,
        list_reports: ListReports | None = None,
        registry_files: Sequence[str] = (),
    ):
        self.store, self.campaigns, self.lk = store, campaigns, lk
        # Fleet-wide do-not-call registries (CampaignCatalog.registry_files): they gate every campaign.
        self.registry_files = tuple(registry_files)
        self.read_report, self.settings, self.clock = read_report, settings, clock
        self.holder = holder or f"tick-{uuid.uuid4()}"
        # Lists the bucket's session reports: inbound callers' do-not-call requests come from there.
        self.list_reports = list_reports

    # --- planning (read-only; the dry run stops here) --------------------------------
    def plan(self, campaign: Campaign, global_live: int, global_used: int = 0) -> Plan:
        return plan_from_ledger(
            self.store,
            campaign,
            self.clock(),
            global_limit=self.settings.global_limit,
            global_live=global_live + global_used,
            registry_block=self.registry_block(campaign.id),
        )

    def registry_block(self, campaign_id: str) -> str | None:
        """Why the campaign's do-not-call registries forbid dialling (never imported, failed), or None."""
        return dnc.campaign_registry_block(self.store, self.campaigns.get(campaign_id), self.registry_files)

    def dry_run(self, campaign_ids: list[str] | None = None) -> dict[str, Plan]:
        global_live = sum(self.store.live_counts().values())
        plans, used = {}, 0
        for cid in campaign_ids or sorted(self.campaigns):
            plans[cid] = self.plan(self._campaign(cid), global_live, used)
            used += len(plans[cid].selected)
        return plans

    # --- the tick --------------------------------------------------------------------
    async def run(self, campaign_ids: list[str] | None = None) -> TickResult:
        """Under the lease: sweep outcomes, sweep do-not-call requests, reconcile reserved
        attempts, then per campaign plan, reserve and dispatch."""
        if self.lk is None:
            raise DialingError("the dialing tick needs LiveKit; use the dry run to plan without it")
        if not self._renew_lease():
            raise TickBusy(
                "another dialing tick holds the ledger lease; this tick dials nothing (the lease expires by itself)"
            )
        result = TickResult()
        try:
            result.sweep = sweep_outcomes(self.store, self.read_report, self.clock(), self.settings.max_call_duration)
            if self.list_reports is not None:
                result.sweep.do_not_call += sweep_inbound_do_not_call(
                    self.store, self.list_reports, self.read_report, self.clock(), self.settings.max_call_duration
                )
            await self._reconcile_reserved(result)
            result.global_live = max(sum(self.store.live_counts().values()), await self._live_rooms())
            used = 0
            for cid in campaign_ids or sorted(self.campaigns):
                campaign = self._campaign(cid)
                plan = self.plan(campaign, result.global_live, used)
                result.plans[cid] = plan
                # Recovered attempts are already in global_live; an unconfirmed dispatch may ring,
                # so it holds a slot of the fleet's like a confirmed one.
                before = result.dialed[cid] + result.not_dialed[f"{cid}:unconfirmed"]
                await self._dial_all(campaign, plan.selected, result)
                used += result.dialed[cid] + result.not_dialed[f"{cid}:unconfirmed"] - before
                campaign_finished_if_settled(self.store, plan, self.clock())  # webhook: nobody left to call
        finally:
            self.store.release_lease(LEASE_NAME, self.holder)
        return result

    def _renew_lease(self) -> bool:
        ttl = self.settings.lease_ttl.total_seconds()
        return self.store.acquire_lease(LEASE_NAME, self.holder, self.clock(), ttl)

    def _campaign(self, cid: str) -> Campaign:
        try:
            return self.campaigns[cid].campaign
        except KeyError:
            raise DialingError(
                f"unknown campaign {cid!r}; known: {', '.join(sorted(self.campaigns)) or 'none'}"
            ) from None

    async def _live_rooms(self) -> int:
        """Calls LiveKit is carrying now, inbound ones included: they use the same GPUs."""
        assert self.lk is not None
        rooms = await self.lk.room.list_rooms(api.ListRoomsRequest())
        return sum(1 for r in rooms.rooms if is_call_id(r.name))

    async def _reconcile_reserved(self, result: TickResult) -> None:
        assert self.lk is not None

        def renew_lease() -> None:
            # Renewed per row, as per dial: a slow recovery must not let the next tick start.
            if not self._renew_lease():
                raise TickBusy("lost the ledger lease to another tick during recovery; it carries on")

        recovery = await reconcile_reserved(
            self.store,
            self.lk,
            self.campaigns,
            self.read_report,
            clock=self.clock,
            recovery_window=self.settings.recovery_window,
            renew_lease=renew_lease,
            registry_block=self.registry_block,
        )
        if recovery.refused is not None:
            raise DialingError(recovery.refused)
        result.recovered += recovery.recovered
        result.redialed += recovery.redialed
        result.expired += recovery.expired
        result.unconfirmed += recovery.unconfirmed
        result.dialed.update(recovery.dialed)

    async def _dial_all(self, campaign: Campaign, selections: list[Selection], result: TickResult) -> None:
        gate = asyncio.Semaphore(self.settings.parallelism)
        refused: list[str] = []

        async def one(sel: Selection) -> None:
            async with gate:
                if refused:
                    return
                why = await self._dial(campaign, sel)
                if why == "dialed":
                    result.dialed[campaign.id] += 1
                else:
                    result.not_dialed[f"{campaign.id}:{why.split(':')[0]}"] += 1
                    if why.startswith("refused"):
                        refused.append(why)

        await asyncio.gather(*(one(s) for s in selections))
        if refused:
            raise DialingError(
                f"LiveKit refused to dispatch the outbound agent for campaign {campaign.id}: {refused[0]}"
            )

    async def _dial(self, campaign: Campaign, sel: Selection) -> str:
        """Reserve, then dispatch, one selection: "dialed", or why not."""
        assert self.lk is not None
        # Renew the lease per dial: a slow tick must not let the next one start and overfill capacity.
        if not self._renew_lease():
            return "refused: lost the ledger lease to another tick"
        reserved = reserve(self.store, campaign, sel, self.clock, lambda: self.registry_block(campaign.id))
        if isinstance(reserved, str):
            return reserved
        return await dispatch(self.store, self.lk, *reserved, self.clock)
