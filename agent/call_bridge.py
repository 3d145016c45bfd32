"""The self-hosted connect of a warm transfer: the agent's job relays the audio between the
caller's room and the consult room, where the human was briefed.

LiveKit's ``WarmTransferTask`` connects the two by ``MoveParticipant``, which livekit-server
v1.13.5 answers "not implemented" (its open-source RoomManager; a LiveKit Cloud feature). Without
it nothing can put a SIP participant into another room, so the two rooms stay and the job joins
them: each side's voice is published into the other room as a track of its own, which the other
side's SIP bridge subscribes to as it does any track (livekit-sip subscribes to every audio track
published in its room, pkg/sip/room.go). The model and the voice of the agent have left by then;
only frames pass, one Opus decode and encode each way (about a frame, 20 ms, of added delay).

The bridge ends when either side hangs up or either room goes away: ``ended`` is set, and
``aclose`` hangs the other side up (the caller's room and the consult room are deleted), so
nobody is left listening to a dead line.

Which audio track: livekit-sip publishes its track without a source (pkg/sip/room.go
``PublishTrack``), so any audio track of the participant is taken, whatever its source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from livekit import rtc

log = logging.getLogger("agent.call_bridge")

SAMPLE_RATE = 16000  # a phone line's audio (8 kHz narrowband, 16 kHz wideband) loses nothing at 16 kHz


class BridgeError(RuntimeError):
    """A side of the bridge is not there to connect."""


class _Leg:
    """One direction: the audio of ``identity`` in ``source_room`` into ``sink_room`` as ``track_name``."""

    def __init__(self, source_room: rtc.Room, identity: str, sink_room: rtc.Room, track_name: str) -> None:
        self.source_room = source_room
        self.identity = identity
        self.sink_room = sink_room
        self.track_name = track_name
        self.frames = 0
        self._source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=200)
        self._publication: rtc.LocalTrackPublication | None = None
        self._relays: dict[str, asyncio.Task] = {}

    async def start(self) -> None:
        participant = self.source_room.remote_participants.get(self.identity)
        if participant is None:
            raise BridgeError(f"{self.track_name}: {self.identity!r} is not in room {self.source_room.name}")
        track = rtc.LocalAudioTrack.create_audio_track(self.track_name, self._source)
        self._publication = await self.sink_room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        self.source_room.on("track_subscribed", self._on_track_subscribed)
        for publication in participant.track_publications.values():
            if publication.track is not None:
                self._on_track_subscribed(publication.track, publication, participant)

    def _on_track_subscribed(
        self, track: rtc.Track, publication: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant
    ) -> None:
        if participant.identity != self.identity or track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        if publication.sid in self._relays:
            return
        self._relays[publication.sid] = asyncio.create_task(self._relay(track), name=f"bridge-{self.track_name}")

    async def _relay(self, track: rtc.Track) -> None:
        stream = rtc.AudioStream.from_track(track=track, sample_rate=SAMPLE_RATE, num_channels=1)
        try:
            async for event in stream:
                await self._source.capture_frame(event.frame)
                self.frames += 1
        finally:
            await stream.aclose()

    async def aclose(self) -> None:
        self.source_room.off("track_subscribed", self._on_track_subscribed)
        for task in self._relays.values():
            task.cancel()
        await asyncio.gather(*self._relays.values(), return_exceptions=True)
        if self._publication is not None and self.sink_room.isconnected():
            with contextlib.suppress(Exception):
                await self.sink_room.local_participant.unpublish_track(self._publication.sid)
        await self._source.aclose()


class CallBridge:
    """The caller (in the caller's room) and the human (in the consult room), joined by the agent's
    job. ``hang_up``: called once, when the bridge ends, to end both legs of the call."""

    def __init__(
        self,
        *,
        caller_room: rtc.Room,
        caller_identity: str,
        consult_room: rtc.Room,
        human_identity: str,
        hang_up: Callable[[], Awaitable[None]],
    ) -> None:
        self.ended = asyncio.Event()
        self.why: str | None = None  # what ended it: "caller hung up", "human hung up", a room closed
        self.gone: str | None = None  # the side whose leg ended it ("caller" or "human"); None: the agent
        self._rooms = {caller_room: caller_identity, consult_room: human_identity}
        self._names = {caller_identity: "caller", human_identity: "human"}
        self._legs = [
            _Leg(caller_room, caller_identity, consult_room, "caller"),  # the human hears the caller
            _Leg(consult_room, human_identity, caller_room, "human"),  # the caller hears the human
        ]
        self._hang_up = hang_up
        self._closed = False
        self._handlers: list[tuple[rtc.Room, str, Callable]] = []

    @property
    def frames(self) -> dict[str, int]:
        """Frames relayed each way so far (the human heard ``caller`` of them, the caller ``human``)."""
        return {leg.track_name: leg.frames for leg in self._legs}

    async def start(self) -> None:
        """Publish each side's voice into the other room; raises ``BridgeError`` when a side is gone."""
        for room, identity in self._rooms.items():
            self._watch(room, identity)
        try:
            for leg in self._legs:
                await leg.start()
        except BaseException:
            await self._close_legs()
            raise
        log.info("caller and human connected through the agent's bridge")

    def _watch(self, room: rtc.Room, identity: str) -> None:
        side = self._names[identity]

        def left(participant: rtc.RemoteParticipant) -> None:
            if participant.identity == identity:
                self._end(f"{side} hung up", side)

        def closed(*_args: object) -> None:
            self._end(f"{side}'s room closed", side)

        for event, handler in (("participant_disconnected", left), ("disconnected", closed)):
            room.on(event, handler)
            self._handlers.append((room, event, handler))

    def _end(self, why: str, side: str | None = None) -> None:
        if not self.ended.is_set():
            self.why, self.gone = why, side
            log.info("bridge ended: %s", why)
            self.ended.set()

    async def _close_legs(self) -> None:
        for room, event, handler in self._handlers:
            with contextlib.suppress(Exception):
                room.off(event, handler)
        self._handlers.clear()
        try:
            await asyncio.wait_for(asyncio.gather(*(leg.aclose() for leg in self._legs), return_exceptions=True), 5.0)
        except TimeoutError:
            log.warning("the bridge's tracks did not close within 5 s")

    async def aclose(self) -> None:
        """End the bridge and both legs of the call (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._end(self.why or "the agent ended the call")
        # the other side first: the job's own shutdown (the report, the recording's upload) runs
        # beside this and must not keep a person listening to a dead line
        try:
            await self._hang_up()
        except Exception as exc:  # noqa: BLE001 - the rooms go away with their last participant anyway
            log.warning("hanging up after the bridge: %s", type(exc).__name__)
        await self._close_legs()
