"""Bench: server time of the call browser's pages over 1,000,000 indexed calls (target < 300 ms).

    .venv/bin/python bench/browser_pages.py [--calls 1000000] [--index PATH] [--requests 30]

The synthetic index (SQLite engine of ``callindex``, the embedded default) is generated once
and cached outside git (default ~/.cache/callcenter/bench/browser-calls-<N>.db); later runs
reuse it. Records are realistic in shape (transcript, analysis, latency; random unit
embeddings: vector search is not what this measures). ``python -m browser`` is then served
by uvicorn on loopback next to the GCS emulator (playback links), and each page is requested --requests times; the figure is the app's own ``Server-Timing``
(handler + index queries + template), with the client-observed time beside it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
import numpy as np  # noqa: E402

from callcenter.bucket import open_client  # noqa: E402
from callcenter.ids import deterministic_call_id  # noqa: E402
from callcenter.outcomes import CallDirection, CallOutcome  # noqa: E402
from callcenter.paths import audio_path  # noqa: E402
from callcenter.record import (  # noqa: E402
    AnalysisStatus,
    CallAnalysis,
    CallRecord,
    LatencySummary,
    Sentiment,
    TranscriptSegment,
    TranscriptSource,
)
from callcenter.report import Speaker, TurnLatency  # noqa: E402
from callindex.sqlite import SqliteCallIndex  # noqa: E402

BUCKET = "call-center-recordings-bench"
END = datetime(2026, 11, 24, tzinfo=UTC)
DAYS = 365
CAMPAIGNS = [None] + [f"campaign-{i:02d}" for i in range(20)]
PERSONAS = ["receptionist", "recall", "billing", "survey", "collections"]
OUTCOMES = [
    (CallOutcome.ANSWERED, 55),
    (CallOutcome.NO_ANSWER, 15),
    (CallOutcome.VOICEMAIL, 10),
    (CallOutcome.BUSY, 6),
    (CallOutcome.TRANSFERRED, 5),
    (CallOutcome.FAILED, 4),
    (CallOutcome.DECLINED, 3),
    (CallOutcome.WRONG_NUMBER, 1),
    (CallOutcome.DO_NOT_CALL, 1),
]
SIP = {
    CallOutcome.NO_ANSWER: 480,
    CallOutcome.BUSY: 486,
    CallOutcome.FAILED: 503,
    CallOutcome.DECLINED: 603,
    CallOutcome.WRONG_NUMBER: 404,
}
LINES = [
    (Speaker.AGENT, "Hi, this is Ava, an automated assistant for Jade Dental. This call may be recorded."),
    (Speaker.CALLER, "Hi, I'd like to {verb} my {thing} for {day}."),
    (Speaker.AGENT, "Of course, I can {verb} your {thing} for {day} at {hour}. Does that work?"),
    (Speaker.CALLER, "Yes, that works, thank you very much."),
]
VERBS = ["book", "move", "cancel", "confirm", "pay for"]
THINGS = ["cleaning", "check-up", "whitening", "x-ray", "consultation", "invoice"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def synthetic_call(i: int) -> CallRecord:
    rng = random.Random(i)
    started = END - timedelta(seconds=rng.uniform(0, DAYS * 86400))
    outcome = rng.choices([o for o, _ in OUTCOMES], [w for _, w in OUTCOMES])[0]
    campaign = rng.choice(CAMPAIGNS)
    direction = CallDirection.OUTBOUND if campaign else CallDirection.INBOUND
    talked = outcome in (CallOutcome.ANSWERED, CallOutcome.TRANSFERRED)
    words = {
        "verb": rng.choice(VERBS),
        "thing": rng.choice(THINGS),
        "day": rng.choice(WEEKDAYS),
        "hour": f"{rng.randint(8, 17)}:00",
    }
    segments, t = [], 0.3
    for speaker, text in LINES if talked else []:
        text = text.format(**words)
        end = t + 0.3 * len(text.split())
        segments.append(TranscriptSegment(speaker=speaker, text=text, start=round(t, 2), end=round(end, 2)))
        t = end + rng.uniform(0.5, 1.2)
    duration = t + rng.uniform(1, 90) if talked else rng.uniform(5, 40)
    v2v = [rng.lognormvariate(6.6, 0.25) for _ in range(2)] if talked else []
    call_id = deterministic_call_id(started, rng)
    analysis = None
    if talked:
        analysis = CallAnalysis(
            summary=f"The caller asked to {words['verb']} a {words['thing']} for {words['day']}; the agent handled it.",
            disposition=rng.choice(["appointment_booked", "appointment_moved", "resolved", "callback_requested"]),
            sentiment=rng.choices(list(Sentiment), [50, 35, 10, 5])[0],
            customer_intent=f"{words['verb']} a {words['thing']}",
            action_items=["send a confirmation text"] if rng.random() < 0.5 else [],
            follow_up_needed=rng.random() < 0.2,
            goal_achieved=rng.random() < 0.7 if campaign else None,
            extracted_fields={"appointment_day": words["day"]},
        )
    return CallRecord(
        call_id=call_id,
        direction=direction,
        campaign_id=campaign,
        contact_id=f"contact-{rng.randrange(200_000)}" if campaign else None,
        attempt_id=f"attempt-{i}" if campaign else None,
        from_number="+15550100",
        to_number="+15550142",
        persona=rng.choice(PERSONAS),
        agent_name="ava",
        sip_status_code=SIP.get(outcome, 200),
        started_at=started,
        answered_at=started + timedelta(seconds=2) if talked else None,
        ended_at=started + timedelta(seconds=duration),
        duration_s=round(duration, 2),
        outcome=outcome,
        recording_disclosed=talked,
        automated_agent_disclosed=talked,
        recording_uri=f"gs://{BUCKET}/{audio_path(call_id)}" if talked else None,
        recording_path=audio_path(call_id) if talked else None,
        transcript=segments,
        transcript_source=TranscriptSource.RECORDING if talked else None,
        analysis=analysis,
        analysis_status=AnalysisStatus.OK if analysis else AnalysisStatus.SKIPPED,
        latency=LatencySummary(
            turns_measured=len(v2v),
            voice_to_voice_p50_ms=round(min(v2v), 1) if v2v else None,
            voice_to_voice_p95_ms=round(max(v2v), 1) if v2v else None,
            # the call page's chart reads these from the index (not from the session report)
            per_turn=[
                TurnLatency(
                    turn_index=2 * k + 2,
                    eou_to_stt_final_ms=180.0,
                    llm_ttft_ms=320.0,
                    tts_ttfb_ms=150.0,
                    voice_to_voice_ms=round(v, 1),
                )
                for k, v in enumerate(v2v)
            ],
        ),
        processed_at=started + timedelta(minutes=5),
    )


def ensure_index(path: Path, calls: int, batch: int = 5000) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with SqliteCallIndex(path) as index:
        have = index.count()
        if have >= calls:
            print(f"index: {path} holds {have:,} calls (cached)")
            return
        print(f"index: generating {calls - have:,} calls into {path} (once; cached for later runs)")
        rng = np.random.default_rng(have)
        started = time.perf_counter()
        for lo in range(have, calls, batch):
            hi = min(calls, lo + batch)
            vectors = rng.standard_normal((hi - lo, 384), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            index.upsert_many((synthetic_call(i), vectors[i - lo]) for i in range(lo, hi))
            if (hi // batch) % 20 == 0 or hi == calls:
                rate = (hi - have) / (time.perf_counter() - started)
                print(f"  {hi:,} calls  ({rate:,.0f}/s)", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout:.0f} s")


def measure(client: httpx.Client, paths: list[str], requests: int) -> tuple[list[float], list[float]]:
    server, wall = [], []
    for n in range(requests + 2):
        path = paths[n % len(paths)]
        t = time.perf_counter()
        r = client.get(path)
        elapsed = (time.perf_counter() - t) * 1000
        if r.status_code != 200:
            raise RuntimeError(f"{path} -> {r.status_code}: {r.text[:300]}")
        if n >= 2:  # the first two warm the page cache and the templates
            server.append(float(r.headers["server-timing"].split("dur=")[1]))
            wall.append(elapsed)
    return server, wall


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--index", type=Path, default=None)
    ap.add_argument("--requests", type=int, default=30)
    args = ap.parse_args()
    index_path = args.index or Path.home() / ".cache" / "callcenter" / "bench" / f"browser-calls-{args.calls}.db"
    ensure_index(index_path, args.calls)

    with SqliteCallIndex(index_path) as index:
        rng = random.Random(1)
        ids = [r.call_id for r in index.list_calls(limit=500, offset=rng.randrange(args.calls - 500)).items]
        sample = [index.get(c) for c in rng.sample(ids, 40)]
        answered_sample = [r for r in sample if r.recording_path][:20]
        newest = index.list_calls(limit=1).items[0].started_at.date()

    gcs_port, port = free_port(), free_port()
    emulator = f"http://127.0.0.1:{gcs_port}"
    procs = []
    try:
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gcp_storage_emulator",
                    "start",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(gcs_port),
                    "--in-memory",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        wait_http(emulator, procs[0])
        open_client("local", emulator).create_bucket(BUCKET)
        env = {
            **os.environ,
            "CALLCENTER_BROWSER_PORT": str(port),
            "CALLCENTER_BROWSER_INDEX_URL": str(index_path),
            "CALLCENTER_BROWSER_MODE": "local",
            "CALLCENTER_RECORDINGS_BUCKET": BUCKET,
            "STORAGE_EMULATOR_HOST": emulator,
        }
        root = Path(__file__).resolve().parents[1]
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "browser"],
                cwd=root,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        base = f"http://127.0.0.1:{port}"
        wait_http(base + "/healthz", procs[1])
        week = f"date_from={newest - timedelta(days=6)}&date_to={newest}"
        cases = [
            ("call list, first page (newest first)", ["/calls"]),
            ("call list, page 200 (offset 9,950)", ["/calls?page=200"]),
            (
                "call list, campaign + outcome filter",
                [f"/calls?campaign=campaign-{k:02d}&outcome=answered" for k in range(20)],
            ),
            ("call list, last 7 days, sentiment filter", [f"/calls?{week}&sentiment=negative"]),
            ("call list, sorted by duration", ["/calls?sort=duration&order=desc"]),
            ("call list, sorted by latency p50", ["/calls?sort=latency&order=desc"]),
            ("call list, sorted by sentiment", ["/calls?sort=sentiment&order=asc"]),
            ("call list, persona filter", ["/calls?persona=billing"]),
            (
                "call list, persona + duration + latency range",
                ["/calls?persona=recall&min_duration_s=60&max_latency_ms=800"],
            ),
            ("call page (answered, per-turn latency from the index)", [f"/calls/{r.call_id}" for r in answered_sample]),
            ("call page (any outcome)", [f"/calls/{r.call_id}" for r in sample]),
            ("full-text search", ["/search?q=whitening+Tuesday", "/search?q=cleaning", "/search?q=invoice+Friday"]),
            ("find similar (stored embedding)", [f"/search?similar_to={r.call_id}" for r in sample[:10]]),
            ("dashboard, last 14 days", ["/dashboard"]),
        ]
        print(
            f"\n{args.calls:,} indexed calls; {args.requests} requests per page after 2 warm-ups; uvicorn on loopback, 1 worker"
        )
        print(f"{'page':<48} {'server p50':>11} {'server p95':>11} {'client p50':>11}")
        with httpx.Client(base_url=base, timeout=120) as client:
            for name, paths in cases:
                n = args.requests if "dashboard" not in name else max(3, args.requests // 10)
                server, wall = measure(client, paths, n)
                print(
                    f"{name:<48} {pct(server, 50):>8.1f} ms {pct(server, 95):>8.1f} ms {pct(wall, 50):>8.1f} ms",
                    flush=True,
                )
    finally:
        for p in reversed(procs):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
