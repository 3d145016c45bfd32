"""Memory and time of one long call through post-call transcription (decode, attribution, STT).

Builds a call of ``--hours`` by repeating a demo call's conversation (devstack.demo_calls:
Piper agent, espeak-ng caller; the report's turns repeated with it), encoded as Egress writes
it (stereo Ogg/Opus, 48 kbit/s), cached under ``--cache``. Then, in a fresh process,
``transcribe_call`` runs over it and the process's peak RSS is read before and after
(``ru_maxrss``). ``--stt stub`` stands in for STT (returns one segment per chunk: decoding and
attribution only); ``--stt whisper`` runs faster-whisper tiny.en on the CPU.

    .venv/bin/python bench/postcall_long_call.py [--hours 6] [--stt stub|whisper]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def build(hours: float, audio_path: Path, report_path: Path) -> None:
    import av
    import numpy as np

    from devstack.demo_calls import SCENARIOS, render_call

    started = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    call = render_call(next(s for s in SCENARIOS if s.name == "billing_question"), started, random.Random(3), 1)
    with av.open(io.BytesIO(call.audio)) as container:
        resampler = av.AudioResampler(format="s16", layout="stereo", rate=48_000)
        one = np.concatenate(
            [f.to_ndarray().reshape(-1, 2) for fr in container.decode(audio=0) for f in resampler.resample(fr)]
        )
    period = len(one) / 48_000
    total = int(hours * 3600 * 48_000)
    with av.open(str(audio_path), "w", format="ogg") as out:
        stream = out.add_stream("libopus", rate=48_000, layout="stereo")
        stream.bit_rate = 48_000
        written = 0
        while written < total:
            pcm = one[: total - written]
            for start in range(0, len(pcm), 48_000):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(pcm[start : start + 48_000]).reshape(1, -1), format="s16", layout="stereo"
                )
                frame.sample_rate = 48_000
                out.mux(stream.encode(frame))
            written += len(pcm)
        out.mux(stream.encode(None))
    repeats = int(hours * 3600 / period) + 1
    turns = [
        t.model_copy(update={"start": t.start + k * period, "end": t.end + k * period})
        for k in range(repeats)
        for t in call.report.turns
        if t.end + k * period <= hours * 3600
    ]
    report = call.report.model_copy(
        update={"turns": turns, "ended_at": call.report.answered_at + timedelta(seconds=hours * 3600), "latency": []}
    )
    report_path.write_text(report.model_dump_json())


def child(audio_path: Path, report_path: Path, stt_kind: str) -> None:
    from callcenter.redaction import RedactionPolicy
    from callcenter.report import parse_report
    from orchestration.defs.postcall import transcription
    from orchestration.defs.postcall.calls import CallRef
    from orchestration.defs.postcall.speech import SpeechSegment, WhisperSpeechToText
    from orchestration.defs.postcall.transcription import transcribe_call

    # the pipeline refuses recordings past the longest call (MAX_RECORDING_S, 32 min): lifted here,
    # where the point is how memory grows with a recording's length
    transcription.MAX_RECORDING_S = float("inf")
    transcription.MAX_RECORDING_BYTES = 2**40

    class StubSTT:
        longest_s = 0.0

        def transcribe(self, samples):
            self.longest_s = max(self.longest_s, len(samples) / 16_000)
            return [SpeechSegment(0.1, 1.0, "word")] if len(samples) else []

    stt = StubSTT() if stt_kind == "stub" else WhisperSpeechToText(cpu_threads=2)
    if stt_kind == "whisper":
        stt.transcribe(__import__("numpy").zeros(16_000, "float32"))  # load the model before the baseline
    report = parse_report(report_path.read_bytes())
    objects = {report.recording_path: audio_path.read_bytes()}
    report_object = report.recording_path.replace("audio.ogg", "session.json")
    objects[report_object] = report_path.read_bytes()
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    result = transcribe_call(CallRef(report_object, 1), objects.get, stt, RedactionPolicy())
    wall = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "recording_h": round((result.recording_duration_s or 0) / 3600, 2),
                "encoded_mib": round(audio_path.stat().st_size / 2**20, 1),
                "rss_before_mib": round(baseline),
                "rss_peak_mib": round(peak),
                "growth_mib": round(peak - baseline),
                "seconds": round(wall, 1),
                "stt_seconds": round(result.stt_seconds, 1),
                "segments": len(result.recording_transcript),
                "longest_stt_chunk_s": round(getattr(stt, "longest_s", 0.0), 1),
                "failure": result.failure or result.recording_problem,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--stt", choices=["stub", "whisper"], default="stub")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/callcenter-bench-long-call"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    audio_path, report_path = args.cache / f"{args.hours:g}h.ogg", args.cache / f"{args.hours:g}h.json"
    if args.child:
        child(audio_path, report_path, args.stt)
        return
    if not audio_path.exists():
        args.cache.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build(args.hours, audio_path, report_path)
        print(f"built a {args.hours:g} h call in {time.perf_counter() - started:.0f} s: {audio_path}", flush=True)
    cmd = [
        sys.executable,
        __file__,
        "--child",
        "--hours",
        str(args.hours),
        "--stt",
        args.stt,
        "--cache",
        str(args.cache),
    ]
    subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
