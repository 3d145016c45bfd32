"""A handful of indexed calls for the browser's tests: varied outcomes, campaigns, personas and a
contact dialled twice. Transcripts are as the pipeline stores them: already redacted."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from callcenter.ids import deterministic_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import audio_path
from callcenter.record import (
    AnalysisStatus,
    CallAnalysis,
    CallRecord,
    LatencySummary,
    Sentiment,
    TranscriptSegment,
    TranscriptSource,
)
from callcenter.report import Speaker, TurnLatency

BUCKET = "call-center-recordings-test"
A, C = Speaker.AGENT, Speaker.CALLER
RAW_CARD = "4111 1111 1111 1111"  # what the caller said; only the session report's raw turns hold it


def _turns(lines: list[tuple[Speaker, str]], gap: float = 0.6) -> list[TranscriptSegment]:
    t, out = 0.2, []
    for speaker, text in lines:
        length = max(0.8, len(text.split()) * 0.32)
        out.append(TranscriptSegment(speaker=speaker, text=text, start=round(t, 2), end=round(t + length, 2)))
        t += length + gap
    return out


def turn_latencies(turns: list[TranscriptSegment], seed: int) -> list[TurnLatency]:
    rng = random.Random(seed)
    out = []
    for i, seg in enumerate(turns):
        if seg.speaker is A and i > 0:
            stt, llm, tts = rng.uniform(120, 260), rng.uniform(180, 420), rng.uniform(90, 220)
            out.append(
                TurnLatency(
                    turn_index=i,
                    eou_to_stt_final_ms=round(stt, 1),
                    llm_ttft_ms=round(llm, 1),
                    tts_ttfb_ms=round(tts, 1),
                    voice_to_voice_ms=round(stt + llm + tts + rng.uniform(20, 60), 1),
                )
            )
    return out


def _summary(lat: list[TurnLatency]) -> LatencySummary:
    if not lat:
        return LatencySummary()
    v = sorted(t.voice_to_voice_ms for t in lat)

    def med(xs: list[float]) -> float:
        xs = sorted(xs)
        return xs[len(xs) // 2]

    return LatencySummary(
        per_turn=lat,
        turns_measured=len(lat),
        voice_to_voice_p50_ms=med(v),
        voice_to_voice_p95_ms=v[-1],
        llm_ttft_p50_ms=med([t.llm_ttft_ms for t in lat]),
        tts_ttfb_p50_ms=med([t.tts_ttfb_ms for t in lat]),
        eou_to_stt_final_p50_ms=med([t.eou_to_stt_final_ms for t in lat]),
    )


def make_call(
    rng: random.Random,
    started_at: datetime,
    *,
    direction: CallDirection,
    outcome: CallOutcome,
    lines: list[tuple[Speaker, str]] = (),
    analysis: CallAnalysis | None = None,
    campaign_id: str | None = None,
    contact_id: str | None = None,
    attempt_id: str | None = None,
    persona: str | None = "receptionist",
    sip_status_code: int | None = 200,
    with_recording: bool = True,
) -> tuple[CallRecord, list[TurnLatency]]:
    call_id = deterministic_call_id(started_at, rng)
    turns = _turns(list(lines))
    lat = turn_latencies(turns, rng.randrange(1 << 30))
    duration = (turns[-1].end + 1.0) if turns else rng.uniform(15, 40)
    record = CallRecord(
        call_id=call_id,
        direction=direction,
        campaign_id=campaign_id,
        contact_id=contact_id,
        attempt_id=attempt_id,
        from_number="+15550100" if direction is CallDirection.OUTBOUND else "+15550142",
        to_number="+15550142" if direction is CallDirection.OUTBOUND else "+15550100",
        persona=persona,
        agent_name="ava",
        sip_status_code=sip_status_code,
        started_at=started_at,
        answered_at=started_at + timedelta(seconds=3)
        if outcome in (CallOutcome.ANSWERED, CallOutcome.TRANSFERRED)
        else None,
        ended_at=started_at + timedelta(seconds=duration),
        duration_s=round(duration, 2),
        outcome=outcome,
        recording_disclosed=bool(turns),
        automated_agent_disclosed=bool(turns),
        recording_uri=f"gs://{BUCKET}/{audio_path(call_id)}" if with_recording else None,
        recording_path=audio_path(call_id) if with_recording else None,
        transcript=turns,
        transcript_source=TranscriptSource.RECORDING if turns else None,
        analysis=analysis,
        analysis_status=AnalysisStatus.OK if analysis else AnalysisStatus.SKIPPED,
        latency=_summary(lat),
        redactions=sum(t.text.count("[CARD]") for t in turns),
        processed_at=started_at + timedelta(minutes=5),
    )
    return record, lat


def sample_calls() -> list[tuple[CallRecord, list[TurnLatency]]]:
    """Six calls over three days of November 2026."""
    rng = random.Random(8)
    day = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    greeting = "Hi, this is Ava, an automated assistant for Jade Dental. This call may be recorded."
    return [
        make_call(
            rng,
            day,
            direction=CallDirection.INBOUND,
            outcome=CallOutcome.ANSWERED,
            lines=[
                (A, greeting + " How can I help you today?"),
                (C, "Hi, I need to book a cleaning appointment, my teeth feel sensitive."),
                (A, "Of course. I have Tuesday at ten or Thursday at two. Which works better?"),
                (C, "Thursday at two is great."),
                (A, "You're booked for Thursday at two. We'll text you a reminder the day before."),
            ],
            analysis=CallAnalysis(
                summary="The caller booked a dental cleaning appointment for Thursday at two.",
                disposition="appointment_booked",
                sentiment=Sentiment.POSITIVE,
                customer_intent="book a cleaning appointment",
                action_items=["send a reminder text on Wednesday"],
                follow_up_needed=False,
                goal_achieved=True,
                extracted_fields={"appointment_day": "Thursday", "appointment_time": "14:00"},
                analyser="llm:llama-3.1-8b-instruct",
            ),
        ),
        make_call(
            rng,
            day + timedelta(hours=2),
            direction=CallDirection.OUTBOUND,
            outcome=CallOutcome.NO_ANSWER,
            campaign_id="spring-recall",
            contact_id="contact-42",
            attempt_id="attempt-42-1",
            persona="recall",
            sip_status_code=480,
            with_recording=False,
        ),
        make_call(
            rng,
            day + timedelta(days=1, hours=1),
            direction=CallDirection.OUTBOUND,
            outcome=CallOutcome.ANSWERED,
            campaign_id="spring-recall",
            contact_id="contact-42",
            attempt_id="attempt-42-2",
            persona="recall",
            lines=[
                (A, greeting + " I'm calling about your overdue balance of eighty dollars."),
                (C, "Oh right, I can pay that now by card."),
                (A, "Thank you. Please read me the card number."),
                (C, "Sure, it is [CARD], expiry next May."),
                (A, "Thank you, the payment went through. Anything else?"),
                (C, "No, that's all, thanks."),
            ],
            analysis=CallAnalysis(
                summary="The patient paid an overdue balance of eighty dollars by card.",
                disposition="payment_taken",
                sentiment=Sentiment.NEUTRAL,
                customer_intent="pay an overdue balance",
                action_items=[],
                follow_up_needed=False,
                goal_achieved=True,
                extracted_fields={"amount_usd": 80},
            ),
        ),
        make_call(
            rng,
            day + timedelta(days=1, hours=3),
            direction=CallDirection.OUTBOUND,
            outcome=CallOutcome.BUSY,
            campaign_id="spring-recall",
            contact_id="contact-7",
            attempt_id="attempt-7-1",
            persona="recall",
            sip_status_code=486,
            with_recording=False,
        ),
        make_call(
            rng,
            day + timedelta(days=2, hours=4),
            direction=CallDirection.INBOUND,
            outcome=CallOutcome.TRANSFERRED,
            persona="billing",
            lines=[
                (A, greeting + " How can I help?"),
                (C, "I was charged twice for my last visit and I am really annoyed about it."),
                (A, "I'm sorry about the double charge. Let me transfer you to our billing team."),
            ],
            # the extractive analyser's (no model): the call's own sentences, labelled
            analysis=CallAnalysis(
                summary='Caller: "I was charged twice for my last visit and I am really annoyed about it." '
                'Agent: "Let me transfer you to our billing team."',
                disposition="no_follow_up",
                sentiment=Sentiment.NEGATIVE,
                customer_intent="I was charged twice for my last visit and I am really annoyed about it.",
                action_items=[],
                follow_up_needed=False,
                goal_achieved=None,
                do_not_call_requested=False,
                extracted_fields={},
                analyser="extractive",
            ),
        ),
        make_call(
            rng,
            day + timedelta(days=2, hours=6),
            direction=CallDirection.INBOUND,
            outcome=CallOutcome.ANSWERED,
            persona="receptionist",
            lines=[
                (A, greeting + " How can I help you today?"),
                (C, "Can I move my cleaning appointment to next week? Something came up."),
                (A, "Sure, I moved your appointment to next Monday at nine."),
            ],
            analysis=CallAnalysis(
                summary="The caller rescheduled a dental cleaning appointment to next Monday.",
                disposition="appointment_rescheduled",
                sentiment=Sentiment.POSITIVE,
                customer_intent="reschedule an appointment",
                action_items=[],
                follow_up_needed=False,
                goal_achieved=True,
                extracted_fields={"appointment_day": "Monday"},
            ),
        ),
    ]


def session_report_json(record: CallRecord, latency: list[TurnLatency]) -> dict:
    """The agent's session report for a call: its raw turns hold what redaction later removed."""
    raw_turns = [
        {"speaker": t.speaker.value, "text": t.text.replace("[CARD]", RAW_CARD), "start": t.start, "end": t.end}
        for t in record.transcript
    ]
    return {
        "schema_version": 1,
        "call_id": record.call_id,
        "room": record.call_id,
        "direction": record.direction.value,
        "campaign_id": record.campaign_id,
        "contact_id": record.contact_id,
        "attempt_id": record.attempt_id,
        "sip_status_code": record.sip_status_code,
        "started_at": record.started_at.isoformat(),
        "answered_at": record.answered_at.isoformat() if record.answered_at else None,
        "ended_at": record.ended_at.isoformat(),
        "outcome": record.outcome.value,
        "persona": record.persona,
        "recording_path": record.recording_path,
        "turns": raw_turns,
        "latency": [t.model_dump() for t in latency],
    }
