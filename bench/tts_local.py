"""Speech server on the CPU (Piper): time to first byte, real-time factor, concurrent streams.

Starts the real server (`python -m tts.app`) on a free loopback port and drives it over HTTP:

1. TTFB and RTF vs text length, streaming (chunked) vs whole file (`"stream": false`).
2. N concurrent streams: per-stream TTFB, RTF, and underruns (a chunk arriving after the
   audio already delivered would have finished playing, counting from the first byte).

    .venv/bin/python bench/tts_local.py [--backend piper|espeak] [--repeats 3] [--max-streams 8]

Prints markdown tables (docs/benchmarks.md, "TTS server"). Every request loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parent.parent
BYTES_PER_SECOND = 24_000 * 2  # pcm: 24 kHz s16le mono

SENTENCES = [
    "Hello, this is Anna calling from the clinic about your appointment.",
    "It is scheduled for Tuesday the fourteenth at half past ten in the morning.",
    "Please bring your insurance card and a list of the medicines you take.",
    "If you need to reschedule, just tell me a day that suits you better.",
    "We can also send a reminder by text message the day before.",
    "Parking is free for patients in the garage next to the main entrance.",
    "The check-in desk opens fifteen minutes before the first appointment.",
    "Thank you for your time, and have a wonderful day.",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(backend: str, concurrency: int, piper_threads: int = 0) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {
        **os.environ,
        "TTS_HOST": "127.0.0.1",
        "TTS_PORT": str(port),
        "TTS_BACKEND": backend,
        "TTS_LOG_LEVEL": "warning",
        "TTS_MAX_CONCURRENCY": str(concurrency),
        "TTS_MAX_QUEUE": "64",
        "TTS_PIPER_THREADS": str(piper_threads),
        "TTS_VOICES_DIR": tempfile.mkdtemp(prefix="tts-bench-voices-"),
    }
    proc = subprocess.Popen([sys.executable, "-m", "tts.app"], cwd=REPO_ROOT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("server never became ready")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


async def one_request(client: httpx.AsyncClient, base: str, voice: str, text: str, *, stream: bool) -> dict:
    body = {"model": "tts-1", "voice": voice, "input": text, "response_format": "pcm", "stream": stream}
    started = time.perf_counter()
    first = None
    received = 0
    underruns = 0
    async with client.stream("POST", f"{base}/v1/audio/speech", json=body) as response:
        response.raise_for_status()
        async for chunk in response.aiter_raw():
            now = time.perf_counter()
            if first is None:
                first = now
            elif now - first > received / BYTES_PER_SECOND:
                underruns += 1  # playback from the first byte would have run dry before this chunk
            received += len(chunk)
    total = time.perf_counter() - started
    audio = received / BYTES_PER_SECOND
    return {
        "ttfb": (first or started) - started,
        "total": total,
        "audio": audio,
        "rtf": total / audio,
        "underruns": underruns,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server process (all its threads): load-independent cost."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


async def length_sweep(base: str, voice: str, repeats: int, pid: int) -> list[str]:
    rows = [
        "| sentences | chars | audio s | streaming TTFB ms | streaming RTF | whole-file TTFB ms | whole-file RTF "
        "| server CPU s per audio s |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    async with httpx.AsyncClient(timeout=120) as client:
        await one_request(client, base, voice, SENTENCES[0], stream=True)  # warm the connection
        for count in (1, 2, 4, 8):
            text = " ".join(SENTENCES[:count])
            cpu_before = cpu_seconds(pid)
            streamed = [await one_request(client, base, voice, text, stream=True) for _ in range(repeats)]
            cpu_per_audio = (cpu_seconds(pid) - cpu_before) / sum(r["audio"] for r in streamed)
            whole = [await one_request(client, base, voice, text, stream=False) for _ in range(repeats)]
            med = lambda runs, key: statistics.median(r[key] for r in runs)  # noqa: E731
            rows.append(
                f"| {count} | {len(text)} | {med(streamed, 'audio'):.1f} | {ms(med(streamed, 'ttfb'))} | "
                f"{med(streamed, 'rtf'):.3f} | {ms(med(whole, 'ttfb'))} | {med(whole, 'rtf'):.3f} | {cpu_per_audio:.3f} |"
            )
    return rows


async def concurrency_sweep(base: str, voice: str, max_streams: int, pid: int) -> list[str]:
    rows = [
        "| concurrent streams | TTFB p50 ms | TTFB max ms | RTF p50 | RTF max | streams with underruns "
        "| server CPU s per audio s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    text = " ".join(SENTENCES[:4])
    async with httpx.AsyncClient(timeout=300, limits=httpx.Limits(max_connections=64)) as client:
        n = 1
        while n <= max_streams:
            cpu_before = cpu_seconds(pid)
            results = await asyncio.gather(*(one_request(client, base, voice, text, stream=True) for _ in range(n)))
            cpu_per_audio = (cpu_seconds(pid) - cpu_before) / sum(r["audio"] for r in results)
            ttfbs = [r["ttfb"] for r in results]
            rtfs = [r["rtf"] for r in results]
            starved = sum(1 for r in results if r["underruns"])
            rows.append(
                f"| {n} | {ms(statistics.median(ttfbs))} | {ms(max(ttfbs))} | {statistics.median(rtfs):.3f} | "
                f"{max(rtfs):.3f} | {starved}/{n} | {cpu_per_audio:.3f} |"
            )
            if max(rtfs) >= 1.0:
                break  # past real time: more streams only get worse
            n = n * 2 if n < 4 else n + 2
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", default="piper", choices=["piper", "espeak"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-streams", type=int, default=12)
    parser.add_argument("--piper-threads", type=int, default=1, help="TTS_PIPER_THREADS (0: onnxruntime's all cores)")
    args = parser.parse_args()
    voice = "joe" if args.backend == "piper" else "en-us"
    proc, base = start_server(args.backend, concurrency=args.max_streams, piper_threads=args.piper_threads)
    try:
        load = os.getloadavg()[0]
        print(
            f"## {args.backend} on {os.cpu_count()} CPU cores (load average {load:.1f} at start), piper threads "
            f"{args.piper_threads or 'all cores'}, pcm 24 kHz, loopback HTTP\n"
        )
        print("### Time to first byte and real-time factor vs text length (median of", args.repeats, "runs)\n")
        print("\n".join(asyncio.run(length_sweep(base, voice, args.repeats, proc.pid))))
        print("\n### Concurrent streams (4 sentences each, all admitted at once)\n")
        print("\n".join(asyncio.run(concurrency_sweep(base, voice, args.max_streams, proc.pid))))
        print(
            "\nserver CPU s per audio s is wall-clock-free: on an otherwise idle box, about "
            f"{os.cpu_count()} / that figure streams fit in real time."
        )
    finally:
        stop_server(proc)


if __name__ == "__main__":
    main()
