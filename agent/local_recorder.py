"""The local stand-in for LiveKit Egress: a recorder participant that writes the call's audio as
Egress writes it (stereo Ogg/Opus, the agent on channel 0, the caller on channel 1) to the same
bucket object. Only the local stack and the tests select it (``RECORDER=local``): Egress cannot be
built here (the Go module proxy refuses github.com/livekit/egress; docs/local-livekit.md), and this
never runs on GKE, where ``RECORDER`` stays ``egress``.

It joins the room as its own hidden participant of kind ``egress``, as Egress's room composite
does, and subscribes to every audio track. Each speaker's audio is placed on the timeline where it
was received, relative to when the recording started, so turn times line up with the report's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np
from google.api_core.retry import Retry
from livekit import api, rtc

from callcenter.audio import encode_ogg_opus

log = logging.getLogger("agent.local_recorder")

SAMPLE_RATE = 48_000


class LocalRecorder:
    def __init__(self, url: str, api_key: str, api_secret: str, room_name: str) -> None:
        self._url = url
        self._token = (
            api.AccessToken(api_key, api_secret)
            .with_identity(f"EG_local_{room_name[-12:]}")
            .with_kind("egress")
            .with_grants(api.VideoGrants(room_join=True, room=room_name, hidden=True, can_publish=False))
            .to_jwt()
        )
        self._room = rtc.Room()
        self._tasks: list[asyncio.Task] = []
        self._t0 = 0.0
        # channel -> list of (offset in samples, pcm float32)
        self._chunks: dict[int, list[tuple[int, np.ndarray]]] = {0: [], 1: []}

    async def start(self) -> None:
        self._room.on("track_subscribed", self._on_track)
        await self._room.connect(self._url, self._token)
        self._t0 = time.monotonic()
        for participant in self._room.remote_participants.values():
            for pub in participant.track_publications.values():
                if pub.track is not None:
                    self._on_track(pub.track, pub, participant)

    def _on_track(self, track: rtc.Track, _pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind != rtc.TrackKind.KIND_AUDIO:
            return
        channel = 0 if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT else 1
        self._tasks.append(asyncio.create_task(self._read(track, channel)))

    async def _read(self, track: rtc.Track, channel: int) -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        cursor: int | None = None
        async for event in stream:
            pcm = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float32) / 32768.0
            arrived = int((time.monotonic() - self._t0) * SAMPLE_RATE) - len(pcm)
            # contiguous frames follow each other; a gap in arrival (a new track) starts where it arrived
            cursor = arrived if cursor is None or arrived - cursor > SAMPLE_RATE // 5 else cursor
            self._chunks[channel].append((max(cursor, 0), pcm))
            cursor = max(cursor, 0) + len(pcm)

    async def halt(self) -> None:
        """Stop recording now and leave the room: nothing said after this reaches the file (a
        payment step's pause, as stopping an egress ends its file)."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self._room.disconnect()

    async def encode(self) -> bytes:
        """What was recorded, as Ogg/Opus bytes."""
        # encoding a call takes CPU seconds: off the agent's event loop, which still serves the room
        return await asyncio.to_thread(encode_ogg_opus, self.stereo(), SAMPLE_RATE)

    async def stop(self) -> bytes:
        """Leave the room; the recording so far as Ogg/Opus bytes."""
        await self.halt()
        return await self.encode()

    def stereo(self) -> np.ndarray:
        length = max((off + len(pcm) for chunks in self._chunks.values() for off, pcm in chunks), default=0)
        out = np.zeros((max(length, SAMPLE_RATE // 10), 2), np.float32)
        for channel, chunks in self._chunks.items():
            for off, pcm in chunks:
                out[off : off + len(pcm), channel] = pcm
        return out


async def upload(bucket, object_name: str, ogg: bytes) -> None:  # noqa: ANN001 - a google.cloud.storage Bucket
    def put() -> None:
        blob = bucket.blob(object_name)
        blob.upload_from_string(ogg, content_type="audio/ogg", retry=Retry(deadline=60.0), timeout=60)

    await asyncio.to_thread(put)
