"""Audio-only call recording with LiveKit Egress, straight to the recordings bucket.

Dual-channel: the agent on channel 0, the caller on channel 1 (``DUAL_CHANNEL_AGENT``),
as ``SessionReport.recording_channels`` says. Egress uploads with the pod's Workload
Identity when no credentials JSON is configured.

A recording can be paused for a payment step (agent/payment.py). Egress has no pause: a room
composite egress is stopped (its file ends there) and a new one is started with a new file, so a
paused call's recording is a list of segments, ``audio.ogg``, ``audio.1.ogg``, ... with their
offsets on the call's clock in the session report; post-call joins them with silence for the gaps.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from livekit import api

from agent.call_state import CallState, utcnow
from agent.settings import AgentSettings
from callcenter.paths import audio_segment_path
from callcenter.report import RecordingSegment

log = logging.getLogger("agent.recording")

_ENDED = {
    api.EgressStatus.EGRESS_COMPLETE,
    api.EgressStatus.EGRESS_FAILED,
    api.EgressStatus.EGRESS_ABORTED,
    api.EgressStatus.EGRESS_LIMIT_REACHED,
}


def recording_request(
    settings: AgentSettings, call: CallState, filepath: str | None = None
) -> api.RoomCompositeEgressRequest:
    return api.RoomCompositeEgressRequest(
        room_name=call.control.room_name,
        audio_only=True,
        audio_mixing=api.AudioMixing.DUAL_CHANNEL_AGENT,
        file_outputs=[
            api.EncodedFileOutput(
                file_type=api.EncodedFileType.OGG,
                filepath=filepath or audio_segment_path(call.call_id, 0),
                disable_manifest=True,
                gcp=api.GCPUpload(
                    bucket=settings.recordings_bucket,
                    credentials=settings.egress_gcp_credentials.get_secret_value(),
                ),
            )
        ],
    )


@dataclass
class Segment:
    """One egress (or local recorder) and the file it writes."""

    path: str
    started_at: datetime  # when it started recording (Egress' own file start time once known)
    ended_at: datetime | None = None  # when it was stopped; None: it runs to the end of the call
    egress_id: str | None = None
    local: Any = None  # agent.local_recorder.LocalRecorder, on the local stack only


class CallRecording:
    """The call's recording as segments: ``start`` the first, ``pause`` ends the running one before
    card data is asked for, ``resume`` starts the next, ``finish`` waits for every file."""

    def __init__(self, lkapi: api.LiveKitAPI, settings: AgentSettings, call: CallState) -> None:
        self._lkapi, self._settings, self._call = lkapi, settings, call
        self.segments: list[Segment] = []
        self._lock = asyncio.Lock()
        self._finished = False
        self.paused = False  # a payment step holds the recording: nothing starts until it resumes
        self._wanted = False  # the call flow asked for the recording (it may be held)

    @property
    def recording(self) -> bool:
        return bool(self.segments) and self.segments[-1].ended_at is None

    async def start(self) -> None:
        """Start the next segment (the first one at the start of the call); while a payment step
        holds the recording, the segment starts when it resumes."""
        async with self._lock:
            self._wanted = True
            if self._finished or self.recording or self.paused:
                return
            index = len(self.segments)
            path = audio_segment_path(self._call.call_id, index)
            if self._settings.recorder == "local":
                segment = await self._start_local(path)
            else:
                info = await self._lkapi.egress.start_room_composite_egress(
                    recording_request(self._settings, self._call, path)
                )
                segment = Segment(path=path, started_at=utcnow(), egress_id=info.egress_id)
            self.segments.append(segment)
            if index == 0:
                self._call.recording_path = segment.path
                self._call.recording_started_at = segment.started_at
                self._call.egress_id = segment.egress_id
            log.info(
                "recording segment %d started",
                index,
                extra={"call_id": self._call.call_id, "egress_id": segment.egress_id},
            )

    async def resume(self) -> None:
        async with self._lock:
            self.paused = False
            wanted = self._wanted
        if wanted:
            await self.start()

    async def _start_local(self, path: str) -> Segment:
        from agent.local_recorder import LocalRecorder  # the local stack's stand-in for Egress

        settings = self._settings
        recorder = LocalRecorder(
            settings.livekit_url,
            settings.livekit_api_key,
            settings.livekit_api_secret.get_secret_value(),
            self._call.control.room_name,
        )
        await recorder.start()
        return Segment(path=path, started_at=utcnow(), local=recorder)

    async def pause(self) -> bool:
        """Stop the running segment; returns once nothing more of the call reaches its file.
        False when nothing was recording (then nothing starts until ``resume``)."""
        async with self._lock:
            self.paused = True
            if not self.recording:
                return False
            segment = self.segments[-1]
            if segment.local is not None:
                await segment.local.halt()
            else:
                await self._stop_egress(segment, strict=True)
            segment.ended_at = utcnow()
            log.info("recording segment %d stopped", len(self.segments) - 1, extra={"call_id": self._call.call_id})
            return True

    async def _stop_egress(self, segment: Segment, *, strict: bool = False) -> None:
        """Egress' StopEgress sends EOS into the pipeline and returns the egress as ENDING: from then
        its SDK source reads no more packets and only drains its jitter buffer (audio received
        before the stop) into the file (livekit/egress pkg/handler/handler_rpc.go StopEgress,
        pkg/pipeline/source/sdk/appwriter.go). ``strict`` (a payment step): anything but a stopped
        or already ended egress raises, so the card question is not asked over a live recording."""
        try:
            info = await self._lkapi.egress.stop_egress(api.StopEgressRequest(egress_id=segment.egress_id))
        except api.TwirpError as exc:
            # already ended with the room (failed_precondition) is the normal path after a hang-up
            if strict and exc.code not in (api.TwirpErrorCode.FAILED_PRECONDITION, api.TwirpErrorCode.NOT_FOUND):
                raise
            log.debug("stop_egress: %s", exc.message)
            return
        if strict and info.status in (api.EgressStatus.EGRESS_STARTING, api.EgressStatus.EGRESS_ACTIVE):
            raise RuntimeError(f"egress {segment.egress_id} is still {api.EgressStatus.Name(info.status)} after stop")

    async def finish(self, timeout_s: float) -> bool:
        """Stop the running segment and wait until every segment's file is written. False when one
        did not finish in time or failed (the report then points at no recording)."""
        async with self._lock:
            self._finished = True
        ok = True
        for index, segment in enumerate(self.segments):
            try:
                if segment.local is not None:
                    ok = await self._finish_local(segment) and ok
                else:
                    ok = await self._wait_for_egress(segment, timeout_s) and ok
            except Exception as exc:  # never in the way of the session report: it must still be written
                log.error(
                    "could not confirm recording segment %d: %s",
                    index,
                    type(exc).__name__,
                    extra={"call_id": self._call.call_id},
                )
                ok = False
        return ok

    async def _finish_local(self, segment: Segment) -> bool:
        from agent.local_recorder import upload
        from agent.session_report import recordings

        try:
            if segment.ended_at is None:
                await segment.local.halt()
            ogg = await segment.local.encode()
            await upload(recordings(self._settings).bucket, segment.path, ogg)
            return True
        except Exception as exc:
            log.error(
                "could not write the local recording: %s", type(exc).__name__, extra={"call_id": self._call.call_id}
            )
            return False

    async def _wait_for_egress(self, segment: Segment, timeout_s: float) -> bool:
        if segment.ended_at is None:
            await self._stop_egress(segment)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            listed = await self._lkapi.egress.list_egress(
                api.ListEgressRequest(room_name=self._call.control.room_name, egress_id=segment.egress_id)
            )
            info = next((e for e in listed.items if e.egress_id == segment.egress_id), None)
            if info is not None and info.status in _ENDED:
                _take_file_times(segment, info)
                ok = info.status == api.EgressStatus.EGRESS_COMPLETE
                if not ok:
                    log.error("recording failed", extra={"call_id": self._call.call_id, "status": info.status})
                return ok
            await asyncio.sleep(1.0)
        log.error("recording did not finish in %.0f s", timeout_s, extra={"call_id": self._call.call_id})
        return False

    def report_segments(self, origin: datetime) -> list[RecordingSegment]:
        """The segments on the turns' clock (seconds from ``origin``, the first segment's start);
        empty for a recording that was never paused (``recording_path`` says it all)."""
        if len(self.segments) == 1 and self.segments[0].ended_at is None:
            return []  # never paused: recording_path says it all
        out: list[RecordingSegment] = []
        for segment in self.segments:
            start = max((segment.started_at - origin).total_seconds(), out[-1].end if out else 0.0)
            # ended_at is set where a pause stopped it; the last one otherwise ran to the hang-up
            end = None if segment.ended_at is None else max((segment.ended_at - origin).total_seconds(), start)
            out.append(
                RecordingSegment(path=segment.path, start=round(start, 3), end=None if end is None else round(end, 3))
            )
        return out


def _take_file_times(segment: Segment, info: api.EgressInfo) -> None:
    """Egress' own times for the file (nanoseconds), better than when the agent asked."""
    results = list(info.file_results) or ([info.file] if info.HasField("file") else [])
    if results and results[0].started_at:
        segment.started_at = datetime.fromtimestamp(results[0].started_at / 1e9, tz=UTC)
    if results and results[0].ended_at and segment.ended_at is not None:
        segment.ended_at = datetime.fromtimestamp(results[0].ended_at / 1e9, tz=UTC)


async def start_recording(lkapi: api.LiveKitAPI, settings: AgentSettings, call: CallState) -> None:
    if not settings.egress_enabled:
        return
    if not settings.recordings_bucket:
        raise RuntimeError("RECORDINGS_BUCKET is not set: Egress cannot record the call")
    if call.recording is None:
        call.recording = CallRecording(lkapi, settings, call)
    await call.recording.start()


async def pause_recording(call: CallState) -> bool:
    """Stop the call's recording before card data is asked for (agent/payment.py); one that has
    not started yet is held until ``resume_recording``."""
    return call.recording is not None and await call.recording.pause()


async def resume_recording(call: CallState) -> None:
    """Start the recording's next segment once the card data is taken."""
    if call.recording is not None:
        await call.recording.resume()


async def finish_recording(
    lkapi: api.LiveKitAPI, call: CallState, *, settings: AgentSettings | None = None, timeout_s: float = 60.0
) -> bool:
    """Stop the call's recording if still running and wait until its files are uploaded.

    The session report must land after the audio ("report present = call complete").
    Returns False when Egress did not finish in time or failed.
    """
    if call.recording is None:
        return True
    ok = await call.recording.finish(timeout_s)
    first = call.recording.segments[0] if call.recording.segments else None
    if first is not None:
        call.recording_started_at = first.started_at  # Egress' own start time of the file, once known
    return ok
