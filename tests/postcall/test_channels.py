"""Recordings as Egress really writes them: separated, swapped, identical (mixed) or mono channels.

Without ``enable_room_composite_sdk_source`` Egress records audio-only room composites through
Chrome and ignores DUAL_CHANNEL_AGENT: both channels carry the same mix (livekit/egress#1121,
livekit/agents#4462). livekit/egress#1199 saw the caller on the left and the agent on the right.
Post-call must attribute every word to the speaker who said it, whichever of these it gets.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
import numpy as np
import pytest

from callcenter.audio import encode_ogg_opus as encode_recording
from callcenter.ids import new_call_id
from callcenter.paths import audio_path, report_path
from callcenter.record import CallRecord, TranscriptSource
from callcenter.redaction import RedactionPolicy
from callcenter.report import Speaker, Turn
from orchestration.defs.postcall.assets import call_transcripts
from orchestration.defs.postcall.audio import STT_RATE, decode_recording
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.channels import ChannelMode, separate_speakers
from orchestration.defs.postcall.records import build_record
from orchestration.defs.postcall.resources import CallIndexResource, RedactionSettings
from orchestration.defs.postcall.speech import WhisperSpeechToText
from orchestration.defs.postcall.transcription import transcribe_call
from tests.postcall.conftest import upload_call

pytestmark = pytest.mark.xdist_group("postcall")

STARTED = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
AGENT_CHANNEL, CALLER_CHANNEL = 0, 1


def encode_ogg_opus(pcm: np.ndarray) -> bytes:
    """float32 [n, channels] at STT_RATE -> Ogg/Opus (1 or 2 channels), as Egress writes audio-only rooms."""
    return encode_recording(pcm, STT_RATE)


def _stems(call) -> tuple[np.ndarray, np.ndarray]:
    """The demo call's agent and caller channels (it renders them apart, as DUAL_CHANNEL_AGENT promises)."""
    decoded = decode_recording(call.audio)
    return decoded.channels[AGENT_CHANNEL], decoded.channels[CALLER_CHANNEL]


def identical_channels(call) -> bytes:
    """What Egress writes through Chrome: the room's mix on both channels."""
    agent, caller = _stems(call)
    mix = (agent + caller) * 0.7
    return encode_ogg_opus(np.stack([mix, mix], axis=1))


def swapped_channels(call) -> bytes:
    """livekit/egress#1199: caller on the left, agent on the right."""
    agent, caller = _stems(call)
    return encode_ogg_opus(np.stack([caller, agent], axis=1))


def mono(call) -> bytes:
    agent, caller = _stems(call)
    return encode_ogg_opus(((agent + caller) * 0.7)[:, None])


def _transcribe(call, audio: bytes, report=None):
    report = report or call.report
    objects = {call.report_object: report.model_dump_json().encode(), call.audio_object: audio}
    return transcribe_call(CallRef(call.report_object, 1), objects.get, WhisperSpeechToText(), RedactionPolicy())


def _said(result, speaker: Speaker) -> str:
    return " ".join(s.text for s in result.recording_transcript if s.speaker is speaker).lower()


def _words(segments) -> int:
    return sum(len(s.text.split()) for s in segments)


def _assert_wrong_number_attributed(result) -> None:
    """wrong_number: the agent introduces itself and apologises; the caller says it is the wrong number."""
    agent, caller = _said(result, Speaker.AGENT), _said(result, Speaker.CALLER)
    # tiny.en on a cut of an espeak voice may write "wrong number" as "belong number": the
    # caller's own words are "no maria here" and "number", the agent's "assistant"
    assert "assistant" in agent and "no maria" not in agent, agent
    assert "no maria" in caller and "number" in caller and "assistant" not in caller, caller
    # Each word once: a mix transcribed as each speaker would double the recording's words.
    assert _words(result.recording_transcript) <= 1.3 * _words(result.live_transcript)
    assert result.chosen is TranscriptSource.RECORDING


# --- the decision, on synthetic channels: noise bursts where each speaker's turns are -----------------------

TURNS = [
    Turn(speaker=Speaker.AGENT, text="a", start=0.5, end=3.0),
    Turn(speaker=Speaker.CALLER, text="c", start=3.6, end=5.5),
    Turn(speaker=Speaker.AGENT, text="a", start=6.2, end=9.0),
    Turn(speaker=Speaker.CALLER, text="c", start=9.5, end=10.5),
    Turn(speaker=Speaker.AGENT, text="a", start=11.0, end=12.5),
]
SECONDS = 13.5
MAPPING = {"agent": 0, "caller": 1}


def _speech(speaker: Speaker, rng: np.random.Generator, turns=TURNS) -> np.ndarray:
    out = np.zeros(int(SECONDS * STT_RATE), np.float32)
    for t in turns:
        if t.speaker is speaker:
            a, b = int(t.start * STT_RATE), int(t.end * STT_RATE)
            out[a:b] = rng.normal(0, 0.1, b - a)
    return out


def _layouts():
    rng = np.random.default_rng(5)
    agent, caller = _speech(Speaker.AGENT, rng), _speech(Speaker.CALLER, rng)
    mix = agent + caller
    near = mix + rng.normal(0, 0.004, mix.size).astype(np.float32)  # the same mix, coded a little differently
    echo = caller + 0.05 * agent  # a separated caller channel with the agent's echo in it
    return {
        "separated": ([agent, caller], ChannelMode.DUAL_CHANNEL),
        "separated_with_echo": ([agent, echo], ChannelMode.DUAL_CHANNEL),
        "swapped": ([caller, agent], ChannelMode.DUAL_CHANNEL_SWAPPED),
        "identical": ([mix, mix.copy()], ChannelMode.MIXED_SPLIT_BY_REPORT),
        "near_identical": ([mix, near], ChannelMode.MIXED_SPLIT_BY_REPORT),
        "mono": ([mix], ChannelMode.MIXED_SPLIT_BY_REPORT),
    }


@pytest.mark.parametrize("name", list(_layouts()))
def test_channel_layout_is_recognised(name: str) -> None:
    channels, expected = _layouts()[name]
    result = separate_speakers(channels, TURNS, MAPPING)
    assert result.mode is expected, result.reason
    assert set(result.tracks) == {Speaker.AGENT, Speaker.CALLER}
    # Whatever the layout, the agent's track is loud in the agent's turns and quiet in the caller's.
    rms = lambda x, a, b: float(np.sqrt(np.mean(x[int(a * STT_RATE) : int(b * STT_RATE)] ** 2)))  # noqa: E731
    agent_track, caller_track = result.tracks[Speaker.AGENT], result.tracks[Speaker.CALLER]
    assert rms(agent_track, 0.6, 2.9) > 0.05 and rms(agent_track, 3.9, 5.2) < 0.01
    assert rms(caller_track, 3.9, 5.2) > 0.05 and rms(caller_track, 0.6, 2.9) < 0.01


def test_the_reason_names_the_layout_without_words_of_the_call() -> None:
    channels, _ = _layouts()["identical"]
    result = separate_speakers(channels, TURNS, MAPPING)
    assert "same audio" in result.reason and "correlation" in result.reason
    assert result.stats["channel_correlation"] > 0.99
    mono_result = separate_speakers(_layouts()["mono"][0], TURNS, MAPPING)
    assert "one channel" in mono_result.reason


def test_a_mix_without_turn_times_falls_back_with_a_reason() -> None:
    channels, _ = _layouts()["identical"]
    result = separate_speakers(channels, [], MAPPING)
    assert result.mode is ChannelMode.MONO_FALLBACK and result.tracks == {}
    assert "no turn times" in result.reason


def test_a_mix_whose_turn_times_do_not_match_falls_back_with_a_reason() -> None:
    channels, _ = _layouts()["identical"]
    elsewhere = [t.model_copy(update={"start": 20 + t.start, "end": 20 + t.end}) for t in TURNS]
    result = separate_speakers(channels, elsewhere, MAPPING)
    assert result.mode is ChannelMode.MONO_FALLBACK and result.tracks == {}
    assert "do not match" in result.reason


@pytest.mark.parametrize("offset_s", [-2.0, 3.5])
def test_turn_times_offset_from_the_recording_are_matched_first(offset_s: float) -> None:
    """The agent counts turn times from when it asked Egress to record; Egress starts writing
    seconds later (Chrome has to load), so the report's clock runs ahead of the file's."""
    channels, _ = _layouts()["identical"]
    late = [t.model_copy(update={"start": t.start - offset_s, "end": t.end - offset_s}) for t in TURNS]
    late = [t for t in late if t.start >= 0]
    result = separate_speakers(channels, late, MAPPING)
    assert result.mode is ChannelMode.MIXED_SPLIT_BY_REPORT, result.reason
    assert result.stats["turn_offset_s"] == pytest.approx(offset_s, abs=0.06)
    assert "turn times moved" in result.reason
    agent_track, caller_track = result.tracks[Speaker.AGENT], result.tracks[Speaker.CALLER]
    rms = lambda x, a, b: float(np.sqrt(np.mean(x[int(a * STT_RATE) : int(b * STT_RATE)] ** 2)))  # noqa: E731
    assert rms(agent_track, 6.3, 8.9) > 0.05 and rms(agent_track, 3.9, 5.2) < 0.01
    assert rms(caller_track, 3.9, 5.2) > 0.05 and rms(caller_track, 6.3, 8.9) < 0.01


def test_separated_channels_the_turn_times_cannot_tell_apart_keep_the_reports_mapping() -> None:
    channels, _ = _layouts()["separated"]
    result = separate_speakers(channels, [], MAPPING)
    assert result.mode is ChannelMode.DUAL_CHANNEL and "no turn times" in result.reason
    assert result.tracks[Speaker.AGENT] is channels[0]


def test_the_reports_own_mapping_is_followed() -> None:
    """An agent that declares caller-left/agent-right is not 'swapped' when Egress did just that."""
    channels, _ = _layouts()["swapped"]
    result = separate_speakers(channels, TURNS, {"agent": 1, "caller": 0})
    assert result.mode is ChannelMode.DUAL_CHANNEL
    assert result.tracks[Speaker.AGENT] is channels[1]


# --- end to end through transcribe_call, on rendered demo calls (Piper agent, espeak-ng caller) ------------


def test_separated_channels_are_transcribed_as_dual_channel(render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    result = _transcribe(call, call.audio)
    assert result.channel_mode is ChannelMode.DUAL_CHANNEL
    _assert_wrong_number_attributed(result)


def test_identical_channels_are_split_by_the_reports_turn_times(render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    result = _transcribe(call, identical_channels(call))
    assert result.channel_mode is ChannelMode.MIXED_SPLIT_BY_REPORT, result.channel_reason
    _assert_wrong_number_attributed(result)


def test_swapped_channels_are_swapped_back(render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    result = _transcribe(call, swapped_channels(call))
    assert result.channel_mode is ChannelMode.DUAL_CHANNEL_SWAPPED, result.channel_reason
    _assert_wrong_number_attributed(result)


def test_a_mono_recording_is_split_by_the_reports_turn_times(render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    result = _transcribe(call, mono(call))
    assert result.recording_problem is None
    assert result.channel_mode is ChannelMode.MIXED_SPLIT_BY_REPORT, result.channel_reason
    _assert_wrong_number_attributed(result)


def test_a_mix_is_split_by_turn_times_counted_from_before_egress_started(render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    late = [t.model_copy(update={"start": t.start + 2.5, "end": t.end + 2.5}) for t in call.report.turns]
    result = _transcribe(call, identical_channels(call), report=call.report.model_copy(update={"turns": late}))
    assert result.channel_mode is ChannelMode.MIXED_SPLIT_BY_REPORT, result.channel_reason
    # 50 ms frames, and turn edges a frame or two from the speech's: three frames either side
    assert result.channel_stats["turn_offset_s"] == pytest.approx(-2.5, abs=0.15)
    _assert_wrong_number_attributed(result)


def test_a_mix_the_turn_times_cannot_split_keeps_the_live_transcript(render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    shifted = [t.model_copy(update={"start": t.start + 60, "end": t.end + 60}) for t in call.report.turns]
    report = call.report.model_copy(update={"turns": shifted})
    result = _transcribe(call, identical_channels(call), report=report)
    assert result.channel_mode is ChannelMode.MONO_FALLBACK and "do not match" in result.channel_reason
    assert result.recording_transcript == []  # never the mix once as each speaker
    assert result.chosen is TranscriptSource.LIVE and result.failure is None
    assert [s.speaker for s in result.transcript] == [t.speaker for t in call.report.turns]


# --- the asset check: which mode each call used ------------------------------------------------------------


def _as_new_call(call, started_at: datetime):
    call_id = new_call_id(started_at)
    report = call.report.model_copy(
        update={"call_id": call_id, "room": call_id, "recording_path": audio_path(call_id)}
    )
    return type(call)(report, audio_path(call_id), report_path(call_id), call.audio)


def test_the_asset_check_shows_each_calls_mode(bucket, tmp_path, render_demo_call) -> None:
    as_asked = render_demo_call("wrong_number", STARTED)
    swapped = _as_new_call(as_asked, STARTED.replace(minute=10))
    mixed = _as_new_call(as_asked, STARTED.replace(minute=20))
    upload_call(bucket, as_asked)
    upload_call(bucket, swapped, audio=swapped_channels(as_asked))
    upload_call(bucket, mixed, audio=identical_channels(as_asked))

    result = dg.materialize(
        [call_transcripts],
        partition_key=STARTED.date().isoformat(),
        resources={
            "recordings_bucket": bucket,
            "speech_to_text": WhisperSpeechToText(),
            "call_index_store": CallIndexResource(data_dir=str(tmp_path)),
            "redaction": RedactionSettings(),
        },
        instance=dg.DagsterInstance.ephemeral(),
    )
    assert result.success
    check = next(e for e in result.get_asset_check_evaluations() if e.check_name == "recording_channel_mode")
    # Calls Egress did not record as asked are named, with the mode and its reason; the rest pass.
    assert not check.passed and check.severity is dg.AssetCheckSeverity.WARN
    metadata = {k: v.value for k, v in check.metadata.items()}
    assert metadata["modes"] == {"dual_channel": 1, "dual_channel_swapped": 1, "mixed_split_by_report": 1}
    assert metadata["calls_by_mode"] == {
        "dual_channel": [as_asked.report.call_id],
        "dual_channel_swapped": [swapped.report.call_id],
        "mixed_split_by_report": [mixed.report.call_id],
    }
    details = metadata["details"]
    assert set(details) == {swapped.report.call_id, mixed.report.call_id}
    assert details[swapped.report.call_id].startswith("dual_channel_swapped: ")
    assert details[mixed.report.call_id].startswith("mixed_split_by_report: both channels carry the same audio")
    # No PII in metadata: no words of the call, no phone numbers.
    dumped = json.dumps(metadata).lower()
    assert not any(w in dumped for w in ("maria", "wrong number", "assistant", as_asked.report.to_number))
    output = result.asset_materializations_for_node("call_transcripts")[0].metadata
    assert output["channel_modes"].value == metadata["modes"]


def test_the_index_record_keeps_the_mode_and_its_reason(render_demo_call) -> None:
    call = render_demo_call("wrong_number", STARTED)
    transcribed = _transcribe(call, identical_channels(call))
    record = build_record(transcribed, None, "gs://b/" + call.audio_object, datetime.now(UTC))
    stored = CallRecord.model_validate_json(record.model_dump_json())
    assert stored.recording_channel_mode is ChannelMode.MIXED_SPLIT_BY_REPORT
    assert "same audio" in stored.recording_channel_reason
