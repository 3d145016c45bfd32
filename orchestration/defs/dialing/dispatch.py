"""Reserve, then dispatch: one dial, exactly once.

An attempt row is committed (``reserved``) before anything is sent, after the checks that
the plan made at the tick's start are made again (a pause, stop or do-not-call request may
land while a tick runs, and a slow tick must not ring past the window's end). It is marked
``sending`` in its own commit right before ``CreateDispatch`` goes out, and ``dispatched``
when LiveKit answers: a row left ``sending`` may have rung, so it is never sent again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from livekit import api

from callcenter.campaign import Campaign
from callcenter.dispatch import AGENT_NAME, OutboundCallRequest
from callcenter.ids import new_call_id
from orchestration.defs.dialing.ledger import Attempt, AttemptStatus, CampaignState, DialStore, attempt_key
from orchestration.defs.dialing.planner import Selection
from orchestration.defs.dialing.windows import window_closes, window_verdict

log = logging.getLogger(__name__)

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


def dial_deadline(campaign: Campaign, now: datetime, zones: tuple[str, ...]) -> datetime:
    """Until when the agent may place the call: the calling window's end in the contact's
    zones, and no later than DISPATCH_VALIDITY from now (a dispatch queued for a worker)."""
    return min(window_closes(campaign.calling_window, now, zones), now + DISPATCH_VALIDITY)


def reserve(
    store: DialStore,
    campaign: Campaign,
    sel: Selection,
    clock: Callable[[], datetime],
    registry_block: Callable[[], str | None],
) -> tuple[Attempt, OutboundCallRequest] | str:
    """Check the selection again now, then commit its attempt row (``reserved``). Returns the
    attempt and its dispatch request, or why it is not dialled (a ``TickResult.not_dialed`` reason)."""
    # A pause, stop or DNC request may land while this tick runs: re-read right before.
    state, _ = store.campaign_state(campaign.id)
    if state is not CampaignState.ACTIVE:
        return f"campaign_{state.value}"
    if store.is_do_not_call(sel.contact.phone_number):
        return "do_not_call"
    if registry_block() is not None:
        return "do_not_call_registry"
    # One call at a time to a number, whichever campaigns list it: a DNC said on the first
    # must be able to stop the second.
    if store.number_in_call(sel.contact.phone_number) is not None:
        return "number_in_call"
    now = clock()
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
        *store.contact_profile(campaign.id, attempt.contact_id),
        dial_by=dial_deadline(campaign, now, sel.contact.time_zones),
    )
    if not store.reserve(attempt):
        return "already_reserved"
    return attempt, request


async def dispatch(
    store: DialStore,
    lk: api.LiveKitAPI,
    attempt: Attempt,
    request: OutboundCallRequest,
    clock: Callable[[], datetime],
) -> str:
    """Send a reserved attempt's dispatch: ``dialed``, ``unconfirmed`` (it may ring: never sent
    again), ``cancelled_before_dispatch`` (a stop came first) or ``refused: ...`` (nobody rang)."""
    # From here on the call may ring: a row left "sending" is never sent again.
    if not store.mark_sending(attempt.attempt_id):
        return "cancelled_before_dispatch"  # a stop cancelled the reservation meanwhile
    try:
        created = await lk.agent_dispatch.create_dispatch(
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
        store.cancel(attempt.attempt_id, f"dispatch refused: {e.code} {e.message}", clock())
        return f"refused: {e.code} {e.message}"
    except aiohttp.ClientConnectorError as e:
        store.cancel(attempt.attempt_id, f"LiveKit unreachable: {e}", clock())
        return f"refused: LiveKit unreachable ({e})"
    except (TimeoutError, aiohttp.ClientError) as e:
        # Unknown whether LiveKit created it: never sent again; the next ticks look for it.
        log.warning("dispatch of %s unconfirmed (%s); its report or a timeout closes it", attempt.call_id, e)
        return "unconfirmed"
    store.mark_dispatched(attempt.attempt_id, created.id, clock())
    return "dialed"
