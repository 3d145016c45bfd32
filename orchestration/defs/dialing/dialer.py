"""One dialing tick: close finished calls, reconcile crashed attempts, plan, dial.

Exactly once: an attempt row is committed (``reserved``) before ``CreateDispatch`` and
marked ``dispatched`` after. A run that dies in between leaves a reserved row; the next
tick looks the call up in LiveKit (dispatch or room under that call id) and in the bucket
(session report) and only dispatches it (same call id, same attempt) when no trace exists.
Ticks never overlap (a lease in the ledger), so capacity counts hold.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from livekit import api

from callcenter.campaign import Campaign, CampaignFile
from callcenter.dispatch import AGENT_NAME, OutboundCallRequest
from callcenter.ids import is_call_id, new_call_id
from callcenter.outcomes import CallOutcome
from orchestration.defs.dialing import dnc
from orchestration.defs.dialing.contacts import Contact
from orchestration.defs.dialing.ledger import Attempt, AttemptStatus, CampaignState, DialStore, attempt_key
from orchestration.defs.dialing.outcomes import (
    ListReports,
    OutcomeSweep,
    ReadReport,
    find_report,
    sweep_inbound_do_not_call,
    sweep_outcomes,
)
from orchestration.defs.dialing.planner import Capacity, Plan, Selection, gc_paused, plan_tick
from orchestration.defs.dialing.windows import window_closes, window_verdict
from orchestration.defs.webhooks.campaign_events import campaign_finished_if_settled

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

LEASE_NAME = "dialing-tick"
ABANDONMENT_WINDOW = timedelta(days=30)


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


# A dispatch that waits longer than this for a free agent worker is stale: the agent drops it.
DISPATCH_VALIDITY = timedelta(minutes=5)


def build_request(
    campaign: Campaign,
    attempt: Attempt,
    name: str | None = None,
    fields: Mapping[str, Any] | None = None,
    *,
    dial_by: datetime | None = None,
) -> OutboundCallRequest:
    """Validated dispatch metadata: a bad campaign or number fails here, before the ledger.

    ``name`` and ``fields`` come from the contact list (its custom columns), for the script;
    ``dial_by`` is when the agent must give up placing the call (see ``dial_deadline``).
    """
    return OutboundCallRequest(
        dial_by=dial_by,
        contact_name=name,
        contact_fields=dict(fields or {}),
        call_id=attempt.call_id,
        phone_number=attempt.phone_number,
        campaign_id=campaign.id,
        contact_id=attempt.contact_id,
        attempt_id=attempt.attempt_id,
        persona=campaign.persona,
        sip_trunk_id=campaign.outbound_trunk,
        caller_id=campaign.caller_id,
        transfer_number=campaign.transfer_number,
        voicemail_policy=campaign.voicemail_policy,
        voicemail_message=campaign.voicemail_message,
        recording_disclosure=campaign.recording_disclosure,
        ring_timeout_s=campaign.ring_timeout_s,
    )


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
        now = self.clock()
        state, _ = self.store.campaign_state(campaign.id)
        live = self.store.live_counts()
        capacity = Capacity(
            campaign_limit=campaign.max_concurrent_calls,
            campaign_live=live.get(campaign.id, 0),
            global_limit=self.settings.global_limit,
            global_live=global_live + global_used,
        )
        with gc_paused():  # the ledger reads build ~3 objects per contact
            contacts = self.store.load_contacts(campaign.id)
            do_not_call = self.store.do_not_call_numbers()
            history = self.store.history(campaign.id)
        return plan_tick(
            campaign,
            contacts,
            now=now,
            state=state,
            do_not_call=do_not_call,
            history=history,
            capacity=capacity,
            abandonment=self.store.abandonment(campaign.id, now - ABANDONMENT_WINDOW),
            registry_block=self.registry_block(campaign.id),
        )

    def registry_block(self, campaign_id: str) -> str | None:
        """Why the campaign's do-not-call registries forbid dialling (never imported, failed), or None."""
        cf = self.campaigns.get(campaign_id)
        if cf is None:
            return None
        locations = dnc.campaign_registries(cf, self.registry_files)
        return dnc.registry_block(self.store.registry_imports(), locations) if locations else None

    def dry_run(self, campaign_ids: list[str] | None = None) -> dict[str, Plan]:
        global_live = sum(self.store.live_counts().values())
        plans, used = {}, 0
        for cid in campaign_ids or sorted(self.campaigns):
            plans[cid] = self.plan(self._campaign(cid), global_live, used)
            used += len(plans[cid].selected)
        return plans

    # --- the tick --------------------------------------------------------------------
    async def run(self, campaign_ids: list[str] | None = None) -> TickResult:
        if self.lk is None:
            raise DialingError("the dialing tick needs LiveKit; use the dry run to plan without it")
        ttl = self.settings.lease_ttl.total_seconds()
        if not self.store.acquire_lease(LEASE_NAME, self.holder, self.clock(), ttl):
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
        # Renew the lease per dial: a slow tick must not let the next one start and overfill capacity.
        if not self.store.acquire_lease(LEASE_NAME, self.holder, self.clock(), self.settings.lease_ttl.total_seconds()):
            return "refused: lost the ledger lease to another tick"
        # A pause, stop or DNC request may land while this tick runs: re-read right before.
        state, _ = self.store.campaign_state(campaign.id)
        if state is not CampaignState.ACTIVE:
            return f"campaign_{state.value}"
        if self.store.is_do_not_call(sel.contact.phone_number):
            return "do_not_call"
        if self.registry_block(campaign.id) is not None:
            return "do_not_call_registry"
        # One call at a time to a number, whichever campaigns list it: a DNC said on the first
        # must be able to stop the second.
        if self.store.number_in_call(sel.contact.phone_number) is not None:
            return "number_in_call"
        now = self.clock()
        # The plan was made at the tick's start: a slow tick must not ring past the window's end.
        if not window_verdict(campaign.calling_window, now, sel.contact.time_zones)[0]:
            return "outside_calling_window"
        call_id = new_call_id()
        attempt = Attempt(
            attempt_id=f"att-{call_id[5:]}",
            idempotency_key=attempt_key(campaign.id, sel.contact.contact_id, sel.attempt_number),
            campaign_id=campaign.id,
            contact_id=sel.contact.contact_id,
            attempt_number=sel.attempt_number,
            phone_number=sel.contact.phone_number,
            call_id=call_id,
            status=AttemptStatus.RESERVED,
            reserved_at=now,
        )
        request = build_request(
            campaign,
            attempt,
            *self.store.contact_profile(campaign.id, attempt.contact_id),
            dial_by=dial_deadline(campaign, now, sel.contact.time_zones),
        )
        if not self.store.reserve(attempt):
            return "already_reserved"
        return await self._dispatch(attempt, request)

    async def _dispatch(self, attempt: Attempt, request: OutboundCallRequest) -> str:
        assert self.lk is not None
        # From here on the call may ring: a row left "sending" is never sent again.
        if not self.store.mark_sending(attempt.attempt_id):
            return "cancelled_before_dispatch"  # a stop cancelled the reservation meanwhile
        try:
            dispatch = await self.lk.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(
                    agent_name=AGENT_NAME, room=attempt.call_id, metadata=request.model_dump_json()
                )
            )
        except api.TwirpError as e:
            if e.status >= 500:
                # A 5xx may come from a proxy after LiveKit created the dispatch: it may ring.
                log.warning("dispatch of %s unconfirmed (%s); its report or a timeout closes it", attempt.call_id, e)
                return "unconfirmed"
            # LiveKit itself refused it: nothing was created, nobody was called.
            self.store.cancel(attempt.attempt_id, f"dispatch refused: {e.code} {e.message}", self.clock())
            return f"refused: {e.code} {e.message}"
        except aiohttp.ClientConnectorError as e:
            self.store.cancel(attempt.attempt_id, f"LiveKit unreachable: {e}", self.clock())
            return f"refused: LiveKit unreachable ({e})"
        except (TimeoutError, aiohttp.ClientError) as e:
            # Unknown whether LiveKit created it: never sent again; the next ticks look for it.
            log.warning("dispatch of %s unconfirmed (%s); its report or a timeout closes it", attempt.call_id, e)
            return "unconfirmed"
        self.store.mark_dispatched(attempt.attempt_id, dispatch.id, self.clock())
        return "dialed"

    # --- crash recovery --------------------------------------------------------------
    async def _reconcile_reserved(self, result: TickResult) -> None:
        assert self.lk is not None
        ttl = self.settings.lease_ttl.total_seconds()
        for attempt in self.store.attempts([AttemptStatus.RESERVED, AttemptStatus.SENDING]):
            # Renewed per row, as per dial: a slow recovery must not let the next tick start.
            if not self.store.acquire_lease(LEASE_NAME, self.holder, self.clock(), ttl):
                raise TickBusy("lost the ledger lease to another tick during recovery; it carries on")
            now = self.clock()
            found = await self._trace(attempt)
            if found is not None:
                if self.store.mark_dispatched(attempt.attempt_id, found, now):
                    result.recovered.append(attempt.call_id)
                continue
            if attempt.status is AttemptStatus.SENDING:
                # It may have rung and left no trace yet (the agent deletes the room at hang-up
                # and writes its report after the recording): never sent again. Its report
                # closes it, or the sweep times it out as failed after max_call_duration.
                result.unconfirmed.append(attempt.call_id)
                continue
            if attempt.reserved_at + self.settings.recovery_window < now:
                # Too old to tell whether it rang: count it as a failed attempt, never redial blindly.
                self.store.close_attempt(
                    attempt.call_id,
                    CallOutcome.FAILED,
                    now,
                    note="reservation expired with no trace in LiveKit or the bucket",
                )
                result.expired.append(attempt.call_id)
                continue
            cf = self.campaigns.get(attempt.campaign_id)
            why_not, contact = self._still_dialable(cf.campaign if cf else None, attempt, now)
            if why_not:
                self.store.cancel(attempt.attempt_id, f"not dialled after recovery: {why_not}", now)
                continue
            assert cf is not None and contact is not None
            profile = self.store.contact_profile(attempt.campaign_id, attempt.contact_id)
            deadline = dial_deadline(cf.campaign, now, contact.time_zones)
            outcome = await self._dispatch(attempt, build_request(cf.campaign, attempt, *profile, dial_by=deadline))
            if outcome == "dialed":
                result.redialed.append(attempt.call_id)
                result.dialed[attempt.campaign_id] += 1
            elif outcome.startswith("refused"):
                raise DialingError(f"LiveKit refused to dispatch recovered attempt {attempt.attempt_id}: {outcome}")

    async def _trace(self, attempt: Attempt) -> str | None:
        """A dispatch id (or marker) when the call visibly happened; None when it left no trace."""
        assert self.lk is not None
        dispatches = await self.lk.agent_dispatch.list_dispatch(attempt.call_id)
        if dispatches:
            return dispatches[0].id
        rooms = await self.lk.room.list_rooms(api.ListRoomsRequest(names=[attempt.call_id]))
        if rooms.rooms:
            return "room-exists"
        if find_report(self.read_report, attempt.call_id) is not None:
            return "session-report"
        return None

    def _still_dialable(
        self, campaign: Campaign | None, attempt: Attempt, now: datetime
    ) -> tuple[str | None, Contact | None]:
        """(why not, the contact): why the attempt may not be sent now, None when it may."""
        if campaign is None:
            return f"campaign {attempt.campaign_id} no longer defined", None
        state, _ = self.store.campaign_state(campaign.id)
        if state is not CampaignState.ACTIVE:
            return f"campaign {state.value}", None
        if self.store.is_do_not_call(attempt.phone_number):
            return "number on the do-not-call list", None
        if (blocked := self.registry_block(campaign.id)) is not None:
            return blocked, None
        contact = next((c for c in self.store.load_contacts(campaign.id) if c.contact_id == attempt.contact_id), None)
        if contact is None:
            return "contact removed from the list", None
        allowed, why = window_verdict(campaign.calling_window, now, contact.time_zones)
        return (None if allowed else why), contact


def dial_deadline(campaign: Campaign, now: datetime, zones: tuple[str, ...]) -> datetime:
    """Until when the agent may place the call: the calling window's end in the contact's
    zones, and no later than DISPATCH_VALIDITY from now (a dispatch queued for a worker)."""
    return min(window_closes(campaign.calling_window, now, zones), now + DISPATCH_VALIDITY)
