"""Test seam for tests/e2e/test_warm_transfer.py, loaded into the agent worker's processes (the
worker and its job processes) only by that test, through PYTHONPATH: the human's phone is
answered by the test.

livekit-sip cannot be built here (docs/local-livekit.md), so the real livekit-server has no SIP
service behind ``CreateSIPParticipant``. In its place, the SDK's dial waits, with the same ringing
timeout, for the party that joins the consult room under the dialled identity, which is what
``CreateSIPParticipant(wait_until_answered=True)`` returns on. The test joins it as livekit-sip
would (devstack/phone_line.py ``sip_leg``). Everything else the worker runs is production code.
"""

from __future__ import annotations

import os

if os.environ.get("CALLCENTER_E2E_HUMAN_ANSWERS") == "1":
    import asyncio

    from livekit.agents import ToolError
    from livekit.agents.beta.workflows import warm_transfer as _warm_transfer

    async def _answered_by_the_test(self, *, room_name: str, identity: str, room) -> None:  # noqa: ANN001
        joined = asyncio.Event()

        def check(*_args: object) -> None:
            if identity in room.remote_participants:
                joined.set()

        room.on("participant_connected", check)
        check()
        try:
            await asyncio.wait_for(joined.wait(), self._ringing_timeout or 30.0)
        except TimeoutError as exc:
            raise ToolError("the human did not answer") from exc
        finally:
            room.off("participant_connected", check)

    _warm_transfer.WarmTransferTask._originate_human_agent = _answered_by_the_test
