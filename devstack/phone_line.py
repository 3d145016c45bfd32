"""The local stand-in for livekit-sip: a simulated phone caller that joins the real livekit-server.

Production inbound calls reach the agent through livekit-sip: the carrier's INVITE matches the
inbound trunk, the individual dispatch rule creates a room named
``<room_prefix>_<caller number>_<random>`` and dispatches the agent into it, and the caller joins
as a participant of kind SIP with ``sip.*`` attributes. livekit-sip cannot be built here (the Go
module proxy refuses github.com/livekit/sip, see docs/local-livekit.md), so this module does the
same from the room side: a token of kind ``sip`` with the same attributes, the same room name
shape and the dispatch rule's agent dispatch. Its audio is real: it publishes the caller's voice
over WebRTC (RTP/Opus through livekit-server) and records what the agent says back.

It is named as a stand-in everywhere it is used, and never ships to GKE.

    python -m devstack.phone_line --say hello.wav --record heard.wav   # one call into the local stack
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import secrets
import string
import time
import wave
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from livekit import api, rtc

log = logging.getLogger("devstack.phone_line")

SAMPLE_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = SAMPLE_RATE * FRAME_MS // 1000
SPEECH_RMS = 300.0  # int16 RMS above which a received frame counts as the agent speaking

# attributes livekit-sip sets on the caller's participant (the agent reads the first two)
ATTR_CALLER_NUMBER = "sip.phoneNumber"
ATTR_TRUNK_NUMBER = "sip.trunkPhoneNumber"
ATTR_CALL_STATUS = "sip.callStatus"


def individual_room_name(room_prefix: str, caller_number: str) -> str:
    """The room name livekit-sip's individual dispatch rule gives an inbound call."""
    alphabet = string.ascii_letters + string.digits
    return f"{room_prefix}_{caller_number}_{''.join(secrets.choice(alphabet) for _ in range(12))}"


def load_wav_16k(path: Path) -> np.ndarray:
    """Mono int16 at 16 kHz (what the line speaks); other rates are resampled linearly."""
    with wave.open(str(path)) as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit PCM")
        rate, channels = w.getframerate(), w.getnchannels()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    if channels > 1:
        pcm = pcm.reshape(-1, channels)[:, 0]
    return to_line_pcm(pcm.astype(np.float32) / 32768.0, rate)


def to_line_pcm(audio: np.ndarray, rate: int) -> np.ndarray:
    """Float mono audio in [-1, 1] at ``rate`` -> the line's int16 at 16 kHz (linear resampling)."""
    if rate != SAMPLE_RATE:
        n = int(len(audio) * SAMPLE_RATE / rate)
        audio = np.interp(np.linspace(0, len(audio) - 1, n), np.arange(len(audio)), audio)
    return (np.clip(audio, -1, 1) * 32767).astype(np.int16)


@dataclass
class Say:
    """One caller utterance: spoken ``after_agent_quiet_s`` after the agent last spoke (or
    ``at_s`` after the call connected, whichever comes later)."""

    pcm: np.ndarray
    after_agent_quiet_s: float = 1.2
    at_s: float = 0.0
    after: asyncio.Event | None = None  # spoken only once this is set (a cue from another party in a test)


@dataclass
class LineResult:
    room: str
    heard: np.ndarray  # what the caller's earpiece played, 16 kHz mono int16, in real time
    agent_joined: bool
    # per utterance: (caller's last frame sent, agent's first speech frame heard after it), monotonic s
    turn_gaps: list[tuple[float, float | None]] = field(default_factory=list)
    # each track apart, by "<participant identity>/<track name>" (the agent's voice, hold music, ...)
    heard_tracks: dict[str, np.ndarray] = field(default_factory=dict)

    def write_heard(self, path: Path) -> Path:
        with wave.open(str(path), "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(SAMPLE_RATE)
            w.writeframes(self.heard.tobytes())
        return path

    @property
    def voice_to_voice_s(self) -> list[float]:
        return [heard - sent for sent, heard in self.turn_gaps if heard is not None]


async def dispatch_rule_route(url: str, api_key: str, api_secret: str) -> tuple[str, str]:
    """The room prefix and agent name of the server's individual dispatch rule (the one the
    rollout's ``dispatch_rule`` asset creates), as livekit-sip would apply them."""
    async with api.LiveKitAPI(url, api_key, api_secret) as lk:
        rules = (await lk.sip.list_dispatch_rule(api.ListSIPDispatchRuleRequest())).items
    for rule in rules:
        if rule.rule.HasField("dispatch_rule_individual") and rule.room_config.agents:
            return rule.rule.dispatch_rule_individual.room_prefix, rule.room_config.agents[0].agent_name
    raise LookupError(
        "no individual dispatch rule with an agent on this livekit-server: materialize the rollout's "
        "sip_trunks job (Dagster UI) first"
    )


def caller_token(
    api_key: str,
    api_secret: str,
    *,
    room: str,
    caller_number: str,
    trunk_number: str,
    agent_name: str,
) -> str:
    """A SIP participant's token as livekit-sip mints it, with the dispatch rule's agent dispatch."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(f"sip_{caller_number}")
        .with_name(caller_number)
        .with_kind("sip")
        .with_attributes({ATTR_CALLER_NUMBER: caller_number, ATTR_TRUNK_NUMBER: trunk_number, ATTR_CALL_STATUS: "active"})
        .with_grants(api.VideoGrants(room_join=True, room=room, room_create=True))
        .with_room_config(api.RoomConfiguration(agents=[api.RoomAgentDispatch(agent_name=agent_name)]))
        .to_jwt()
    )


def callee_token(api_key: str, api_secret: str, *, room: str, identity: str, phone_number: str) -> str:
    """The token livekit-sip mints for the party a ``CreateSIPParticipant`` dialled, once they answer."""
    return (
        api.AccessToken(api_key, api_secret)
        .with_identity(identity)
        .with_name(phone_number)
        .with_kind("sip")
        .with_attributes({ATTR_CALLER_NUMBER: phone_number, ATTR_CALL_STATUS: "active"})
        .with_grants(api.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )


@dataclass
class SipLeg:
    """A party on the phone, in a room as livekit-sip puts them there: it hears every audio track
    and speaks through one track of its own."""

    room: rtc.Room
    earpiece: Earpiece
    mouth: Mouth
    tasks: list[asyncio.Task]

    def track_names(self) -> list[str]:
        return list(self.earpiece.tracks)


@asynccontextmanager
async def sip_leg(url: str, token: str) -> AsyncIterator[SipLeg]:
    """Join as a SIP participant and subscribe as livekit-sip does: not automatically, but to each
    audio track when it is published (pkg/sip/room.go joins with auto-subscribe off and subscribes
    in its OnTrackPublished callback). Leaving the block is hanging up."""
    room = rtc.Room()
    earpiece = Earpiece()
    tasks: list[asyncio.Task] = []

    def subscribe(pub: rtc.RemoteTrackPublication, _participant: rtc.RemoteParticipant) -> None:
        if pub.kind == rtc.TrackKind.KIND_AUDIO:
            pub.set_subscribed(True)

    def on_track(track: rtc.Track, pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            tasks.append(asyncio.create_task(earpiece.listen(track, f"{participant.identity}/{pub.name}")))

    room.on("track_published", subscribe)
    room.on("track_subscribed", on_track)
    await room.connect(url, token, rtc.RoomOptions(auto_subscribe=False))
    try:
        for participant in room.remote_participants.values():
            for pub in participant.track_publications.values():
                subscribe(pub, participant)
        source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=100)
        track = rtc.LocalAudioTrack.create_audio_track(room.local_participant.identity, source)
        await room.local_participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        mouth = Mouth(source)
        tasks.append(asyncio.create_task(mouth.run()))
        yield SipLeg(room=room, earpiece=earpiece, mouth=mouth, tasks=tasks)
    finally:
        await room.disconnect()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Earpiece:
    """What a party on the line hears: every frame of every audio track in the room, with when
    speech was heard. Each track (the agent's voice, hold music, a bridged party) is kept apart;
    ``heard`` mixes them on the clock they arrived on."""

    def __init__(self) -> None:
        self.tracks: dict[str, tuple[float, list[np.ndarray]]] = {}  # track name -> (first frame at, frames)
        self.last_speech_at: float | None = None
        self.speech_frames: list[float] = []

    async def listen(self, track: rtc.Track, name: str = "") -> None:
        stream = rtc.AudioStream(track, sample_rate=SAMPLE_RATE, num_channels=1)
        key = name or track.sid
        async for event in stream:
            pcm = np.frombuffer(event.frame.data, dtype=np.int16).copy()
            now = time.monotonic()
            self.tracks.setdefault(key, (now, []))[1].append(pcm)
            if pcm.size and float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) > SPEECH_RMS:
                self.last_speech_at = now
                self.speech_frames.append(now)

    def first_speech_after(self, t: float) -> float | None:
        return next((s for s in self.speech_frames if s > t), None)

    def track(self, name: str) -> np.ndarray:
        """All that was heard on one track, in order."""
        frames = self.tracks.get(name, (0.0, []))[1]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def mark(self) -> dict[str, int]:
        """Where each track stands now, for ``since``."""
        return {name: len(frames) for name, (_t, frames) in self.tracks.items()}

    def since(self, mark: dict[str, int], name: str) -> np.ndarray:
        """What one track brought after ``mark``."""
        frames = self.tracks.get(name, (0.0, []))[1][mark.get(name, 0) :]
        return np.concatenate(frames) if frames else np.zeros(0, np.int16)

    def heard(self) -> np.ndarray:
        """Every track mixed, each placed at the time its first frame arrived (real time, 16 kHz)."""
        if not self.tracks:
            return np.zeros(0, np.int16)
        start = min(t for t, _frames in self.tracks.values())
        parts = [(round((t - start) * SAMPLE_RATE), np.concatenate(f)) for t, f in self.tracks.values() if f]
        if not parts:
            return np.zeros(0, np.int16)
        out = np.zeros(max(offset + len(pcm) for offset, pcm in parts), np.int32)
        for offset, pcm in parts:
            out[offset : offset + len(pcm)] += pcm
        return np.clip(out, -32768, 32767).astype(np.int16)


async def place_inbound_call(
    url: str,
    api_key: str,
    api_secret: str,
    *,
    caller_number: str,
    trunk_number: str,
    room_prefix: str = "call-",
    agent_name: str,
    script: Sequence[Say] = (),
    agent_timeout_s: float = 60.0,
    hang_up_after_s: float = 8.0,
    hang_up_mid_reply: bool = False,
) -> LineResult:
    """One inbound call: join, wait for the agent, speak the script, hang up.

    Once the script is done the caller waits (up to ``agent_timeout_s``) for the agent to answer,
    then hangs up ``hang_up_after_s`` after the agent last spoke;
    with ``hang_up_mid_reply`` it hangs up as soon as the agent starts answering the last utterance.
    """
    room_name = individual_room_name(room_prefix, caller_number)
    token = caller_token(
        api_key, api_secret, room=room_name, caller_number=caller_number, trunk_number=trunk_number, agent_name=agent_name
    )
    room = rtc.Room()
    earpiece = Earpiece()
    tasks: list[asyncio.Task] = []
    agent_here = asyncio.Event()

    def on_track(track: rtc.Track, pub: rtc.RemoteTrackPublication, participant: rtc.RemoteParticipant) -> None:
        if track.kind == rtc.TrackKind.KIND_AUDIO:
            tasks.append(asyncio.create_task(earpiece.listen(track, f"{participant.identity}/{pub.name}")))

    def on_joined(participant: rtc.RemoteParticipant) -> None:
        if participant.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT:
            agent_here.set()

    room.on("track_subscribed", on_track)
    room.on("participant_connected", on_joined)
    await room.connect(url, token)
    result = LineResult(room=room_name, heard=np.zeros(0, np.int16), agent_joined=False)
    try:
        if any(p.kind == rtc.ParticipantKind.PARTICIPANT_KIND_AGENT for p in room.remote_participants.values()):
            agent_here.set()
        source = rtc.AudioSource(SAMPLE_RATE, 1, queue_size_ms=100)
        track = rtc.LocalAudioTrack.create_audio_track("caller", source)
        await room.local_participant.publish_track(track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE))
        mouth = Mouth(source)
        tasks.append(asyncio.create_task(mouth.run()))
        try:
            await asyncio.wait_for(agent_here.wait(), agent_timeout_s)
        except TimeoutError:
            log.error("no agent joined %s within %.0f s", room_name, agent_timeout_s)
            return result
        result.agent_joined = True
        connected = time.monotonic()
        for say in script:
            if result.turn_gaps:  # a caller waits for the answer to what they said before going on
                last_sent = result.turn_gaps[-1][0]
                await _until(lambda s=last_sent: earpiece.first_speech_after(s) is not None, agent_timeout_s)
            if say.after is not None:
                await asyncio.wait_for(say.after.wait(), agent_timeout_s)
            await _until_quiet(earpiece, connected, say, deadline=time.monotonic() + agent_timeout_s)
            sent = await mouth.say(say.pcm)
            result.turn_gaps.append((sent, None))
            if hang_up_mid_reply and say is script[-1]:
                await _until(lambda s=sent: earpiece.first_speech_after(s) is not None, agent_timeout_s)
                await asyncio.sleep(0.3)  # a few words into the reply
                break
        if not hang_up_mid_reply:
            if result.turn_gaps:  # a caller waits for the answer to what they said
                last_sent = result.turn_gaps[-1][0]
                await _until(lambda: earpiece.first_speech_after(last_sent) is not None, agent_timeout_s)
            quiet_since = time.monotonic()
            end = quiet_since + agent_timeout_s
            while time.monotonic() < end and room.isconnected():
                last = earpiece.last_speech_at or 0.0
                if time.monotonic() - max(last, quiet_since) > hang_up_after_s:
                    break
                await asyncio.sleep(0.1)
        result.turn_gaps = [(sent, earpiece.first_speech_after(sent)) for sent, _ in result.turn_gaps]
    finally:
        await room.disconnect()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        result.heard = earpiece.heard()
        result.heard_tracks = {name: earpiece.track(name) for name in earpiece.tracks}
    return result


async def _until(predicate, timeout_s: float) -> bool:  # noqa: ANN001
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return False


async def _until_quiet(earpiece: Earpiece, connected: float, say: Say, *, deadline: float) -> None:
    """Wait until the agent has said something and then been quiet for ``after_agent_quiet_s``."""
    while time.monotonic() < deadline:
        now = time.monotonic()
        last = earpiece.last_speech_at
        if now - connected >= say.at_s and last is not None and now - last >= say.after_agent_quiet_s:
            return
        await asyncio.sleep(0.05)


class Mouth:
    """The caller's microphone: a steady real-time 20 ms frame stream, silence between utterances."""

    def __init__(self, source: rtc.AudioSource) -> None:
        self._source = source
        self._queue: asyncio.Queue[tuple[np.ndarray, asyncio.Future]] = asyncio.Queue()

    async def say(self, pcm: np.ndarray) -> float:
        """Speak ``pcm``; returns when its last frame was sent (monotonic seconds)."""
        done: asyncio.Future = asyncio.get_running_loop().create_future()
        await self._queue.put((pcm, done))
        return await done

    async def run(self) -> None:
        silence = np.zeros(FRAME_SAMPLES, np.int16)
        next_at = time.monotonic()
        while True:
            pcm, done = (None, None)
            if not self._queue.empty():
                pcm, done = self._queue.get_nowait()
            chunks = [silence] if pcm is None else [pcm[i : i + FRAME_SAMPLES] for i in range(0, len(pcm), FRAME_SAMPLES)]
            for chunk in chunks:
                if len(chunk) < FRAME_SAMPLES:
                    chunk = np.pad(chunk, (0, FRAME_SAMPLES - len(chunk)))
                frame = rtc.AudioFrame(chunk.tobytes(), SAMPLE_RATE, 1, FRAME_SAMPLES)
                await self._source.capture_frame(frame)
                next_at += FRAME_MS / 1000
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if done is not None and not done.done():
                done.set_result(time.monotonic())


def wait_for_report(bucket, room: str, timeout_s: float = 90.0):  # noqa: ANN001, ANN201
    """The session report the agent wrote for a call in ``room`` (it lands after the hang-up),
    read through the bucket's resource (``orchestration.resources.storage.RecordingsBucket``)."""
    from callcenter.paths import RECORDINGS_PREFIX, REPORT_FILENAME
    from callcenter.report import parse_report

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for blob in bucket.list_prefix(RECORDINGS_PREFIX + "/"):
            if blob.name.endswith("/" + REPORT_FILENAME):
                report = parse_report(bucket.read_bytes(blob.name))
                if report.room == room:
                    return report
        time.sleep(0.5)
    raise TimeoutError(f"no session report for room {room} after {timeout_s:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description="Call the local stack's agent as a phone caller would (livekit-sip stand-in)")
    parser.add_argument("--say", type=Path, action="append", default=[], help="WAV the caller says (repeatable, in order)")
    parser.add_argument("--record", type=Path, help="write what the caller heard to this WAV")
    parser.add_argument("--caller", default="+14155550199")
    parser.add_argument("--trunk-number", default=os.environ.get("CALLCENTER_LOCAL_PHONE_NUMBER", "+14155550100"))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from devstack.livekit import DEV_API_KEY, DEV_API_SECRET

    url = os.environ.get("LIVEKIT_URL", "ws://127.0.0.1:7880")
    key = os.environ.get("LIVEKIT_API_KEY", DEV_API_KEY)
    secret = os.environ.get("LIVEKIT_API_SECRET", DEV_API_SECRET)
    try:
        room_prefix, agent_name = asyncio.run(dispatch_rule_route(url, key, secret))
    except LookupError as exc:
        raise SystemExit(str(exc)) from None
    result = asyncio.run(
        place_inbound_call(
            url,
            key,
            secret,
            caller_number=args.caller,
            trunk_number=args.trunk_number,
            room_prefix=room_prefix,
            agent_name=agent_name,
            script=[Say(load_wav_16k(p)) for p in args.say],
        )
    )
    log.info("room %s: agent joined=%s, voice-to-voice %s", result.room, result.agent_joined, result.voice_to_voice_s)
    if args.record:
        result.write_heard(args.record)


if __name__ == "__main__":
    main()
