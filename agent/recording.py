"""Audio-only call recording with LiveKit Egress, straight to the recordings bucket.

Dual-channel: the agent on channel 0, the caller on channel 1 (``DUAL_CHANNEL_AGENT``),
as ``SessionReport.recording_channels`` says. Egress uploads with the pod's Workload
Identity when no credentials JSON is configured.
"""

from __future__ import annotations

import asyncio
import logging
import time

from livekit import api

from agent.call_state import CallState, utcnow
from agent.settings import AgentSettings
from callcenter.paths import audio_path

log = logging.getLogger("agent.recording")

_ENDED = {
    api.EgressStatus.EGRESS_COMPLETE,
    api.EgressStatus.EGRESS_FAILED,
    api.EgressStatus.EGRESS_ABORTED,
    api.EgressStatus.EGRESS_LIMIT_REACHED,
}


def recording_request(settings: AgentSettings, call: CallState) -> api.RoomCompositeEgressRequest:
    return api.RoomCompositeEgressRequest(
        room_name=call.control.room_name,
        audio_only=True,
        audio_mixing=api.AudioMixing.DUAL_CHANNEL_AGENT,
        file_outputs=[
            api.EncodedFileOutput(
                file_type=api.EncodedFileType.OGG,
                filepath=audio_path(call.call_id),
                disable_manifest=True,
                gcp=api.GCPUpload(
                    bucket=settings.recordings_bucket,
                    credentials=settings.egress_gcp_credentials.get_secret_value(),
                ),
            )
        ],
    )


async def start_recording(lkapi: api.LiveKitAPI, settings: AgentSettings, call: CallState) -> None:
    if not settings.egress_enabled:
        return
    if not settings.recordings_bucket:
        raise RuntimeError("RECORDINGS_BUCKET is not set: Egress cannot record the call")
    if settings.recorder == "local":
        await _start_local_recorder(settings, call)
        return
    info = await lkapi.egress.start_room_composite_egress(recording_request(settings, call))
    call.egress_id = info.egress_id
    call.recording_path = audio_path(call.call_id)
    call.recording_started_at = utcnow()
    log.info("recording started", extra={"call_id": call.call_id, "egress_id": info.egress_id})


async def _start_local_recorder(settings: AgentSettings, call: CallState) -> None:
    from agent.local_recorder import LocalRecorder  # the local stack's stand-in for Egress

    recorder = LocalRecorder(
        settings.livekit_url, settings.livekit_api_key, settings.livekit_api_secret.get_secret_value(), call.control.room_name
    )
    await recorder.start()
    call.local_recorder = recorder
    call.recording_path = audio_path(call.call_id)
    call.recording_started_at = utcnow()
    log.info("recording started (local recorder)", extra={"call_id": call.call_id})


async def _finish_local_recorder(settings: AgentSettings, call: CallState) -> bool:
    from agent.local_recorder import upload
    from agent.session_report import recordings

    try:
        ogg = await call.local_recorder.stop()
        bucket = recordings(settings).bucket
        await upload(bucket, call.recording_path, ogg)
        return True
    except Exception as exc:  # never in the way of the session report
        log.error("could not write the local recording: %s", type(exc).__name__, extra={"call_id": call.call_id})
        return False


async def finish_recording(
    lkapi: api.LiveKitAPI, call: CallState, *, settings: AgentSettings | None = None, timeout_s: float = 60.0
) -> bool:
    """Stop the call's egress if still running and wait until its file is uploaded.

    The session report must land after the audio ("report present = call complete").
    Returns False when Egress did not finish in time or failed.
    """
    if call.local_recorder is not None and settings is not None:
        return await _finish_local_recorder(settings, call)
    if call.egress_id is None:
        return True
    try:
        return await _wait_for_egress(lkapi, call, timeout_s)
    except Exception as exc:  # never in the way of the session report: it must still be written
        log.error("could not confirm the recording: %s", type(exc).__name__, extra={"call_id": call.call_id})
        return False


async def _wait_for_egress(lkapi: api.LiveKitAPI, call: CallState, timeout_s: float) -> bool:
    try:
        await lkapi.egress.stop_egress(api.StopEgressRequest(egress_id=call.egress_id))
    except api.TwirpError as exc:
        # already ended with the room (failed_precondition) is the normal path after a hang-up
        log.debug("stop_egress: %s", exc.message)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        listed = await lkapi.egress.list_egress(
            api.ListEgressRequest(room_name=call.control.room_name, egress_id=call.egress_id)
        )
        status = next((e.status for e in listed.items if e.egress_id == call.egress_id), None)
        if status in _ENDED:
            ok = status == api.EgressStatus.EGRESS_COMPLETE
            if not ok:
                log.error("recording failed", extra={"call_id": call.call_id, "status": status})
            return ok
        await asyncio.sleep(1.0)
    log.error("recording did not finish in %.0f s", timeout_s, extra={"call_id": call.call_id})
    return False
