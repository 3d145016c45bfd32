"""An outbound dispatch through the real livekit-server, as the dialer creates it.

The agent takes the job, finds the rollout's outbound trunk by name and asks LiveKit to dial. The
dial itself needs livekit-sip, which cannot be built here (docs/local-livekit.md): the server
answers that no SIP service responded, and the call must end as FAILED in a session report (the
dial ledger retries it), never hang or vanish.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from livekit import api

from callcenter.dispatch import OutboundCallRequest
from callcenter.ids import new_call_id
from callcenter.outcomes import CallOutcome
from callcenter.report import SessionReport
from tests.e2e.conftest import AGENT_NAME

pytestmark = [pytest.mark.slow, pytest.mark.calls, pytest.mark.xdist_group("e2e_calls"), pytest.mark.timeout(180)]


def test_outbound_dispatch_reaches_the_agent_and_a_dial_without_sip_bridge_fails_into_a_report(
    agent_worker, rollout_sip, e2e_bucket
) -> None:
    lk = agent_worker
    request = OutboundCallRequest(
        call_id=new_call_id(),
        phone_number="+14155550123",
        campaign_id="e2e-campaign",
        contact_id="contact-1",
        attempt_id="attempt-1-1",
        persona="plan_renewal",
    )

    async def dispatch() -> None:
        async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as lkapi:
            await lkapi.agent_dispatch.create_dispatch(
                api.CreateAgentDispatchRequest(agent_name=AGENT_NAME, room=request.call_id, metadata=request.model_dump_json())
            )

    started = time.monotonic()
    asyncio.run(dispatch())
    deadline = time.monotonic() + 120
    report = None
    while time.monotonic() < deadline and report is None:
        for blob in e2e_bucket.list_prefix("recordings/"):
            if blob.name.endswith(f"{request.call_id}/session.json"):
                report = SessionReport.model_validate_json(e2e_bucket.read_bytes(blob.name))
        time.sleep(0.5)
    assert report is not None, f"no report for {request.call_id} after {time.monotonic() - started:.0f} s"
    assert report.outcome is CallOutcome.FAILED
    assert report.attempt_id == "attempt-1-1" and report.room == request.call_id
    assert report.answered_at is None and not report.turns
