"""The per-call session report (``callcenter.report.SessionReport``) and its upload to the bucket.

Turns and per-turn latency come from the session history: LiveKit stamps each
``ChatMessage.metrics`` with speaking times, ``transcription_delay`` (end of user speech →
final transcript), ``llm_node_ttft``, ``tts_node_ttfb`` and ``e2e_latency`` (end of user
speech → agent audio out). Written at shutdown, after the recording is finalised.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from datetime import UTC, datetime

from google.api_core.retry import Retry
from livekit.agents import llm

from agent.call_state import CallState
from agent.payment import CARD_DATA_LABEL
from agent.settings import AgentSettings
from callcenter.bucket import Recordings
from callcenter.do_not_call import DoNotCallRequest, HeardBy, conversation_asks_not_to_be_called
from callcenter.outcomes import CallDirection
from callcenter.paths import do_not_call_path, live_transcript_raw_path, report_path
from callcenter.redaction import redact_conversation
from callcenter.report import SessionReport, Speaker, Turn, TurnLatency

log = logging.getLogger("agent.session_report")

_SPEAKERS = {"user": Speaker.CALLER, "assistant": Speaker.AGENT}


def asked_not_to_be_called(turns: list[Turn]) -> bool:
    """The backstop over the whole conversation: the caller's own words (callcenter/do_not_call.py),
    for a request the model's tool missed or that the hang-up cut short."""
    return conversation_asks_not_to_be_called((t.speaker, t.text) for t in turns)


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 1)


def build_report(call: CallState, history: llm.ChatContext, *, ended_at: datetime, agent_name: str) -> SessionReport:
    # turn times are seconds from the start of the recording (the report's contract);
    # without a recording, from the start of the call
    origin_at = call.recording_started_at or call.answered_at or call.started_at
    origin = origin_at.timestamp()
    segments = call.recording.report_segments(origin_at) if call.recording is not None and call.recording_path else []
    paused = [(a.end, b.start) for a, b in itertools.pairwise(segments) if a.end is not None]
    if segments and segments[-1].end is not None:  # stopped for a payment step until the hang-up
        paused.append((segments[-1].end, float("inf")))
    turns: list[Turn] = []
    latency: list[TurnLatency] = []
    last_user: llm.ChatMessage | None = None
    first_agent_speech: float | None = None
    for item in history.items:
        if item.type != "message" or item.role not in _SPEAKERS:
            continue
        text = (item.text_content or "").strip()
        if not text:
            continue
        metrics = item.metrics
        begin = metrics.get("started_speaking_at") or item.created_at
        if item.role == "assistant" and first_agent_speech is None:
            first_agent_speech = begin
        end = max(metrics.get("stopped_speaking_at") or begin, begin)
        turn = Turn(
            speaker=_SPEAKERS[item.role],
            text=text,
            start=round(max(0.0, begin - origin), 3),
            end=round(max(0.0, end - origin), 3),
        )
        if turn.speaker is Speaker.CALLER and _overlaps(turn, paused):
            # what the caller said while the recording was stopped for card data is kept by no one
            turn = turn.model_copy(update={"text": CARD_DATA_LABEL})
        turns.append(turn)
        if item.role == "user":
            last_user = item
            continue
        # an LLM reply to the caller (not a scripted say()) carries the stage timings
        if "llm_node_ttft" in metrics or "e2e_latency" in metrics:
            latency.append(
                TurnLatency(
                    turn_index=len(turns) - 1,
                    end_of_turn_ms=_ms(last_user.metrics.get("end_of_turn_delay")) if last_user else None,
                    eou_to_stt_final_ms=_ms(last_user.metrics.get("transcription_delay")) if last_user else None,
                    llm_ttft_ms=_ms(metrics.get("llm_node_ttft")),
                    tts_ttfb_ms=_ms(metrics.get("tts_node_ttfb")),
                    voice_to_voice_ms=_ms(metrics.get("e2e_latency")),
                )
            )
        last_user = None
    request = call.request
    return SessionReport(
        call_id=call.call_id,
        room=call.control.room_name,
        direction=call.direction,
        campaign_id=request.campaign_id if request else None,
        contact_id=request.contact_id if request else None,
        attempt_id=request.attempt_id if request else None,
        from_number=call.from_number,
        to_number=call.to_number,
        sip_status_code=call.sip_status_code,
        started_at=call.started_at,
        answered_at=call.answered_at,
        # with answered_at: the silence a person heard after picking up (abandonment)
        agent_first_spoke_at=(
            datetime.fromtimestamp(first_agent_speech, tz=UTC) if first_agent_speech is not None else None
        ),
        ended_at=ended_at,
        outcome=call.final_outcome(),
        agent_name=agent_name,
        persona=call.persona.name,
        recording_disclosed=call.recording_disclosed,
        automated_agent_disclosed=call.automated_agent_disclosed,
        do_not_call_requested=call.do_not_call_requested or asked_not_to_be_called(turns),
        transferred_to=call.transferred_to,
        recording_path=call.recording_path,
        recording_segments=segments,
        turns=turns,
        latency=latency,
        agent_error=call.agent_error,
        transfer_steps=call.transfer_steps,
        callback_requested=call.callback_requested,
    )


def _overlaps(turn: Turn, spans: list[tuple[float, float]]) -> bool:
    return any(turn.start < end and turn.end > start for start, end in spans)


def redact_turns(report: SessionReport) -> SessionReport:
    """The report with its live transcript redacted as one conversation (a card read in groups
    across both speakers' turns, a CVV answering the agent's question): the report is read by
    post-call, dialing and the browser, and nothing raw may travel with it."""
    if not report.turns:
        return report
    redacted = redact_conversation([(t.speaker.value, t.text) for t in report.turns])
    if not redacted.count:
        return report
    turns = [t.model_copy(update={"text": text}) for t, text in zip(report.turns, redacted.texts, strict=True)]
    return report.model_copy(update={"turns": turns})


async def write_raw_live_transcript(settings: AgentSettings, report: SessionReport) -> str:
    """The live transcript as heard, as its own object (keep_raw_transcript only)."""
    name = live_transcript_raw_path(report.call_id)
    body = json.dumps([t.model_dump(mode="json") for t in report.turns])

    def put() -> None:
        recordings(settings).write_bytes(name, body, "application/json", retry=Retry(deadline=60.0), timeout=30)

    await asyncio.to_thread(put)
    return name


def recordings(settings: AgentSettings) -> Recordings:
    """GCS via Workload Identity on GKE; the gcp-storage-emulator (no credentials) locally."""
    return Recordings(settings.recordings_bucket, settings.gcp_project, settings.storage_emulator_host)


async def upload_report(settings: AgentSettings, report: SessionReport) -> str:
    """Write ``session.json`` next to the recording; returns the object name."""
    if not settings.recordings_bucket:
        raise RuntimeError("RECORDINGS_BUCKET is not set: the session report has nowhere to go")
    name = report_path(report.call_id)
    body = report.model_dump_json(indent=2)

    def put() -> None:
        # same bytes on every try, so retrying an unconditional upload is safe
        recordings(settings).write_bytes(name, body, "application/json", retry=Retry(deadline=60.0), timeout=30)

    await asyncio.to_thread(put)
    log.info("session report written", extra={"call_id": report.call_id, "object": name})
    return name


async def write_do_not_call_request(settings: AgentSettings, call: CallState, heard_by: HeardBy) -> str:
    """Write the request next to the recording the moment it is heard; dialing suppresses the
    number from it within one tick, whatever becomes of the call and its report."""
    request = DoNotCallRequest(
        call_id=call.call_id,
        direction=call.direction,
        heard_at=datetime.now(UTC),
        heard_by=heard_by,
        from_number=call.from_number if call.direction is CallDirection.INBOUND else None,
    )
    name = do_not_call_path(call.call_id)

    def put() -> None:
        recordings(settings).write_bytes(
            name, request.model_dump_json(), "application/json", retry=Retry(deadline=60.0), timeout=30
        )

    await asyncio.to_thread(put)
    log.info("do-not-call request written", extra={"call_id": call.call_id, "heard_by": heard_by.value})
    return name
