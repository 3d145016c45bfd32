"""Voice-to-voice latency of one turn on the local stack, split by stage.

A caller's utterance (Piper speech) is played into the agent over a simulated 8 kHz phone
line, in real time; the agent runs the production pipeline (silero VAD, LiveKit's local
turn model, devstack STT = faster-whisper tiny.en, openai.LLM, tts/ = Piper) and answers
into a capturing earpiece. Per turn it prints the stages LiveKit measures:

  end_of_turn   VAD end of speech → turn committed (silence wait + turn model)
  stt_final     VAD end of speech → final transcript (runs in parallel with end_of_turn)
  llm_ttfs      LLM request → first sentence ready for TTS (includes TTFT)
  tts_ttfb      first sentence → first audio byte
  v2v           VAD end of speech → first agent audio out (LiveKit's e2e_latency)
  overhead      v2v − (end_of_turn + llm_ttfs + tts_ttfb): framework + our code (sequential mode)

LLM: by default a scripted OpenAI-compatible server with zero model time (the stage then
measures only the client and the wire); ``--llm-url`` points at a real one (vLLM, llama.cpp).

    .venv/bin/python bench/agent_latency.py [--turns 5] [--llm-url http://127.0.0.1:8081/v1 --llm-model M]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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
sys.path.insert(0, str(REPO_ROOT))

from agent.call_agent import CallCenterAgent, mark_answered  # noqa: E402
from agent.call_control import CallControl  # noqa: E402
from agent.local_audio import CapturedAudioOutput, LineAudioInput, read_wav  # noqa: E402
from agent.pipeline import build_session, load_vad  # noqa: E402
from agent.settings import SttProvider, load_settings  # noqa: E402
from agent.worker import new_call  # noqa: E402
from callcenter.ids import new_call_id  # noqa: E402
from doubles.llm_server import Rule, Say, ScriptedLLM  # noqa: E402

CALLER_LINES = [
    "Hi, I have a question about my electricity bill.",
    "When is the payment due this month?",
    "Can I pay it by card over the phone?",
    "What happens if I pay a few days late?",
    "Okay, and how do I change my plan?",
    "Thanks, that is all I needed.",
]
AGENT_REPLY = "Sure. Your payment is due on the first day of each month."
STAGES = ("end_of_turn", "stt_final", "llm_ttfs", "tts_ttfb", "v2v", "overhead", "line_to_audio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f} s")


def start(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        args, cwd=REPO_ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def wait_ready(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: server exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


async def run_mode(settings, caller_pcm, *, semantic: bool, preemptive: bool, turns: int) -> list[dict[str, float]]:
    import livekit.api as lkapi_mod

    lkapi = lkapi_mod.LiveKitAPI("http://127.0.0.1:9", "unused", "unused-secret-unused-secret-unused")
    call = new_call(CallControl(lkapi, new_call_id()), None, settings)
    mark_answered(call)
    session = build_session(
        settings,
        userdata=call,
        vad_model=load_vad(settings),
        semantic_turn_detection=semantic,
        preemptive_generation=preemptive,
    )
    line, earpiece = LineAudioInput(sample_rate=8000), CapturedAudioOutput()
    session.input.audio, session.output.audio = line, earpiece
    rows: list[dict[str, float]] = []
    try:
        await session.start(CallCenterAgent(call))
        await asyncio.sleep(1.0)
        for i in range(turns):
            pcm, rate = caller_pcm[i % len(caller_pcm)]
            before = len(earpiece.replies)
            line.say_pcm(pcm, rate, trailing_silence_s=2.5)
            deadline = time.monotonic() + 60
            while not (len(earpiece.replies) > before and earpiece._current is None):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"turn {i}: no reply within 60 s")
                await asyncio.sleep(0.02)
            line_to_audio = earpiece.reply_started_at[-1] - (line.speech_ended_at or earpiece.reply_started_at[-1])
            await asyncio.sleep(1.0)  # let the line go quiet before the next utterance
            msgs = [m for m in session.history.items if m.type == "message"]
            reply = msgs[-1]
            user = next(m for m in reversed(msgs) if m.role == "user")
            u, a = user.metrics, reply.metrics
            row = {
                "end_of_turn": u.get("end_of_turn_delay", float("nan")),
                "stt_final": u.get("transcription_delay", float("nan")),
                "llm_ttfs": a.get("llm_node_ttfs", a.get("llm_node_ttft", float("nan"))),
                "tts_ttfb": a.get("tts_node_ttfb", float("nan")),
                "v2v": a.get("e2e_latency", float("nan")),
                "line_to_audio": line_to_audio,
            }
            row["overhead"] = row["v2v"] - row["end_of_turn"] - row["llm_ttfs"] - row["tts_ttfb"]
            rows.append(row)
    finally:
        line.close()
        await session.aclose()
        await lkapi.aclose()
    return rows


def print_table(title: str, rows: list[dict[str, float]]) -> None:
    print(f"\n{title}  ({len(rows)} turns, milliseconds)")
    print(f"  {'stage':<14}{'median':>9}{'min':>9}{'max':>9}")
    for stage in STAGES:
        vals = [r[stage] * 1000 for r in rows if r[stage] == r[stage]]
        if vals:
            print(f"  {stage:<14}{statistics.median(vals):>9.0f}{min(vals):>9.0f}{max(vals):>9.0f}")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=5)
    parser.add_argument("--llm-url", help="a real OpenAI-compatible LLM (default: scripted, zero model time)")
    parser.add_argument("--llm-model", default="scripted")
    parser.add_argument(
        "--modes",
        default="sequential-vad,sequential-semantic,production",
        help="comma list of: sequential-vad, sequential-semantic, production",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    stt_port, tts_port = free_port(), free_port()
    procs = [
        start([sys.executable, "-m", "devstack.stt_server", "--port", str(stt_port), "--threads", "2"]),
        start(
            [sys.executable, "-m", "tts.app"],
            {"TTS_BACKEND": "piper", "TTS_PORT": str(tts_port), "TTS_LOG_LEVEL": "warning"},
        ),
    ]
    llm = None
    try:
        wait_for_port(stt_port, procs[0], 120)
        wait_ready(f"http://127.0.0.1:{stt_port}/health", procs[0])
        wait_ready(f"http://127.0.0.1:{tts_port}/ready", procs[1])
        if args.llm_url:
            llm_url, llm_model = args.llm_url, args.llm_model
        else:
            llm = ScriptedLLM([Rule(r"\w", Say(AGENT_REPLY))]).start()
            llm_url, llm_model = llm.base_url, "scripted"
        settings = load_settings(
            stt_provider=SttProvider.OPENAI,
            stt_base_url=f"http://127.0.0.1:{stt_port}/v1",
            llm_base_url=llm_url,
            llm_model=llm_model,
            tts_base_url=f"http://127.0.0.1:{tts_port}/v1",
            tts_model="piper",
            tts_voice="joe",
        )
        caller_pcm = []
        with tempfile.TemporaryDirectory() as tmp:
            for i, text in enumerate(CALLER_LINES):
                r = httpx.post(
                    f"http://127.0.0.1:{tts_port}/v1/audio/speech",
                    json={"model": "piper", "voice": "joe", "input": text, "response_format": "wav", "stream": False},
                    timeout=60,
                )
                r.raise_for_status()
                path = Path(tmp) / f"caller-{i}.wav"
                path.write_bytes(r.content)
                caller_pcm.append(read_wav(path))
        # reference: the STT model alone on the same 8 kHz utterances, nothing else running
        stt_alone = []
        for pcm, rate in caller_pcm:
            from livekit import rtc

            n8k = int(len(pcm) * 8000 / rate)
            import numpy as np

            pcm8 = np.interp(np.linspace(0, len(pcm) - 1, n8k), np.arange(len(pcm)), pcm).astype(np.int16)
            wav = rtc.AudioFrame(pcm8.tobytes(), 8000, 1, n8k).to_wav_bytes()
            t0 = time.perf_counter()
            httpx.post(
                f"http://127.0.0.1:{stt_port}/v1/audio/transcriptions",
                files={"file": ("u.wav", wav, "audio/wav")},
                data={"model": "tiny.en"},
                timeout=60,
            ).raise_for_status()
            stt_alone.append((time.perf_counter() - t0) * 1000)
        print(f"local stack: STT faster-whisper tiny.en (CPU), TTS Piper joe (CPU), LLM {llm_model} @ {llm_url}")
        print(
            f"cpus: {os.cpu_count()}  line: 8 kHz  VAD min silence {settings.vad_min_silence_s} s  "
            "endpointing min_delay 0.3 s, max 2.0 s"
        )
        print(
            f"STT request alone (1.6-2.6 s utterances): median {statistics.median(stt_alone):.0f} ms, "
            f"max {max(stt_alone):.0f} ms"
        )
        modes = {
            "sequential-vad": ("VAD endpointing only, no preemptive LLM (stages add up)", False, False),
            "sequential-semantic": ("local turn model, no preemptive LLM (stages add up)", True, False),
            "production": ("local turn model + preemptive LLM (the agent's settings)", True, True),
        }
        for name in args.modes.split(","):
            title, semantic, preemptive = modes[name.strip()]
            rows = await run_mode(settings, caller_pcm, semantic=semantic, preemptive=preemptive, turns=args.turns)
            print_table(f"[{name}] {title}", rows)
    finally:
        if llm is not None:
            llm.stop()
        for p in procs:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    asyncio.run(main())
