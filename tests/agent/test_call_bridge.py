"""The self-hosted connect of a warm transfer (agent/call_bridge.py) on the real livekit-server:
two rooms, a SIP-like party in each (devstack/phone_line.py ``sip_leg``, subscribing as livekit-sip
does), and the bridge joining them from the agent's two connections. The whole transfer, briefing
included, runs end to end in tests/e2e/test_warm_transfer.py; here the bridge's own contract:
tones cross both ways, and a hang-up on either side ends the bridge and hangs up the other."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import numpy as np
import pytest
from livekit import api, rtc

from agent.call_bridge import BridgeError, CallBridge
from devstack.livekit import LocalLiveKit
from devstack.phone_line import SAMPLE_RATE, SipLeg, callee_token, sip_leg

pytestmark = pytest.mark.timeout(90)


def tone(hz: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.3 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)


def dominant_hz(pcm: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(pcm.astype(np.float64)))
    return float(np.fft.rfftfreq(len(pcm), 1 / SAMPLE_RATE)[int(np.argmax(spectrum))])


@asynccontextmanager
async def agent_in(lk: LocalLiveKit, room: str) -> AsyncIterator[rtc.Room]:
    token = (
        api.AccessToken(lk.api_key, lk.api_secret)
        .with_identity("agent")
        .with_kind("agent")
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )
    connection = rtc.Room()
    await connection.connect(lk.url, token)
    try:
        yield connection
    finally:
        await connection.disconnect()


async def until(predicate, timeout_s: float = 15.0) -> None:  # noqa: ANN001
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def bridged_call(lk: LocalLiveKit) -> AsyncIterator[tuple[CallBridge, SipLeg, SipLeg, list[str]]]:
    """A caller and a human, each in their room with the agent, bridged; ``hung_up`` lists the
    rooms the bridge's hang-up deleted."""
    caller_room = f"bridge-{uuid.uuid4().hex[:8]}"
    consult_room = f"{caller_room}-human-agent"
    hung_up: list[str] = []
    async with AsyncExitStack() as stack:
        agent_caller_side = await stack.enter_async_context(agent_in(lk, caller_room))
        agent_consult_side = await stack.enter_async_context(agent_in(lk, consult_room))
        caller = await stack.enter_async_context(
            sip_leg(lk.url, callee_token(lk.api_key, lk.api_secret, room=caller_room, identity="sip_caller", phone_number="+14155550101"))
        )
        human = await stack.enter_async_context(
            sip_leg(lk.url, callee_token(lk.api_key, lk.api_secret, room=consult_room, identity="human-agent-sip", phone_number="+14155550102"))
        )
        await until(lambda: "sip_caller" in agent_caller_side.remote_participants)
        await until(lambda: "human-agent-sip" in agent_consult_side.remote_participants)

        async def hang_up() -> None:
            async with api.LiveKitAPI(lk.http_url, lk.api_key, lk.api_secret) as lkapi:
                for name in (caller_room, consult_room):
                    await lkapi.room.delete_room(api.DeleteRoomRequest(room=name))
                    hung_up.append(name)

        bridge = CallBridge(
            caller_room=agent_caller_side,
            caller_identity="sip_caller",
            consult_room=agent_consult_side,
            human_identity="human-agent-sip",
            hang_up=hang_up,
        )
        await bridge.start()
        try:
            yield bridge, caller, human, hung_up
        finally:
            await bridge.aclose()


async def test_each_side_hears_the_other_and_the_callers_hang_up_hangs_up_the_human(real_livekit: LocalLiveKit) -> None:
    async with bridged_call(real_livekit) as (bridge, caller, human, hung_up):
        # the bridged tracks reach each side as livekit-sip subscribes: when published
        await until(lambda: any(n.endswith("/human") for n in caller.earpiece.tracks))
        await until(lambda: any(n.endswith("/caller") for n in human.earpiece.tracks))
        await asyncio.sleep(0.5)
        await asyncio.gather(caller.mouth.say(tone(440, 1.5)), human.mouth.say(tone(1000, 1.5)))
        await asyncio.sleep(1.0)
        to_human = human.earpiece.track(next(n for n in human.earpiece.tracks if n.endswith("/caller")))
        to_caller = caller.earpiece.track(next(n for n in caller.earpiece.tracks if n.endswith("/human")))
        loud = lambda pcm: pcm[np.abs(pcm) > 2000]  # noqa: E731 - the tone, not the silence around it
        assert len(loud(to_human)) > SAMPLE_RATE // 2 and len(loud(to_caller)) > SAMPLE_RATE // 2
        assert abs(dominant_hz(to_human) - 440) < 20 and abs(dominant_hz(to_caller) - 1000) < 20
        assert bridge.frames["caller"] > 0 and bridge.frames["human"] > 0

        await caller.room.disconnect()  # the caller hangs up
        await asyncio.wait_for(bridge.ended.wait(), 10)
        assert bridge.why == "caller hung up" and bridge.gone == "caller"
        await bridge.aclose()
        assert len(hung_up) == 2 and hung_up[1] == f"{hung_up[0]}-human-agent"  # both legs, the caller's first
        await until(lambda: not human.room.isconnected())  # the human's line went down with the room


async def test_a_bridge_to_a_party_who_has_gone_refuses_to_start(real_livekit: LocalLiveKit) -> None:
    lk = real_livekit
    async with agent_in(lk, "bridge-empty-a") as a, agent_in(lk, "bridge-empty-b") as b:

        async def hang_up() -> None:
            raise AssertionError("nothing to hang up")

        bridge = CallBridge(caller_room=a, caller_identity="sip_gone", consult_room=b, human_identity="human", hang_up=hang_up)
        with pytest.raises(BridgeError, match="sip_gone"):
            await bridge.start()
        assert not a.local_participant.track_publications and not b.local_participant.track_publications
