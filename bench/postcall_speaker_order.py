"""Speaker order of post-call transcripts over the demo calls: how early each turn's first words are placed.

Renders the demo calls (devstack.demo_calls: Piper agent, espeak-ng caller, stereo Ogg/Opus,
the report's turn times exact), transcribes each with the production code (faster-whisper
tiny.en, per channel) and compares the merged recording transcript with the report's turns:
seconds each turn's first segment starts before its words (ordering error), and replies that
stand before their prompt. ``--before`` runs Whisper as it was before issue 22 (segment times
from Whisper's own timestamps, no alignment with the turns) for comparison.

    .venv/bin/python bench/postcall_speaker_order.py [--calls 54] [--before]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=54)
    parser.add_argument("--before", action="store_true", help="Whisper's segment times, no alignment (pre-fix)")
    parser.add_argument("--stt-threads", type=int, default=2)
    args = parser.parse_args()

    from callcenter.redaction import RedactionPolicy
    from devstack.demo_calls import plan_calls, render_call
    from orchestration.defs.postcall import transcription
    from orchestration.defs.postcall.calls import CallRef
    from orchestration.defs.postcall.ordering import speaker_order
    from orchestration.defs.postcall.speech import WhisperSpeechToText

    stt = WhisperSpeechToText(cpu_threads=args.stt_threads, word_timestamps=not args.before)
    if args.before:
        transcription.align_to_turns = lambda items, turns, offset_s=0.0: list(items)

    early, mean_abs, inverted_calls, inversions, seconds = [], [], 0, 0, 0.0
    # Fixed "now": the same demo calls on every run.
    for scenario, at, rng, i in plan_calls(args.calls, datetime(2026, 11, 26, tzinfo=UTC)):
        call = render_call(scenario, at, rng, i)
        objects = {call.audio_object: call.audio, call.report_object: call.report.model_dump_json().encode()}
        started = time.perf_counter()
        result = transcription.transcribe_call(CallRef(call.report_object, 1), objects.get, stt, RedactionPolicy())
        seconds += time.perf_counter() - started
        offset = result.channel_stats.get("turn_offset_s", 0.0)
        raw = [(s.speaker, s.start, s.end) for s in result.recording_transcript]
        order = speaker_order(raw, call.report.turns, offset)
        early.append(order.max_early_s)
        mean_abs.append(order.mean_abs_error_s)
        inversions += order.replies_before_prompts
        inverted_calls += not order.in_order
        print(
            f"{i:3d} {scenario.name:20s} turns {order.matched_turns}/{len(call.report.turns)} "
            f"max early {order.max_early_s:5.2f} s  mean |err| {order.mean_abs_error_s:4.2f} s  "
            f"replies before prompt {order.replies_before_prompts}",
            flush=True,
        )
    n = len(early)
    print(
        f"\n{'before (Whisper segment times)' if args.before else 'word timestamps + live-turn alignment'}, {n} calls"
    )
    print(f"calls with a reply before its prompt: {inverted_calls} ({inversions} replies)")
    print(f"calls with a turn placed >= 2 s early: {sum(e >= 2.0 for e in early)}")
    print(f"ordering error, max early per call: median {statistics.median(early):.2f} s, max {max(early):.2f} s")
    print(f"ordering error, mean |start error| per call: median {statistics.median(mean_abs):.2f} s")
    print(f"transcription {seconds:.0f} s in all ({seconds / n:.1f} s per call)")


if __name__ == "__main__":
    main()
