"""Voice-to-voice latency through the real media path: phone line → livekit-server → agent → back.

The caller (devstack/phone_line.py, the stand-in for livekit-sip) speaks over WebRTC through the
real livekit-server to the production agent worker (``python -m agent.worker start``) on the local
engines, and measures, per turn, from the caller's last audio frame sent to the first frame of the
agent's answer heard in its earpiece (``line_v2v``). Beside it, the agent's own figure for the same
turns from its session report (``agent_v2v``: LiveKit's e2e_latency, from the VAD's end of speech
to the first audio out), so the difference is the media path plus the VAD's silence wait.

    .venv/bin/python bench/voice_to_voice_livekit.py [--turns 4] [--scripted-llm | --llm-url URL --llm-model M]

Without ``--llm-url`` it starts llama.cpp with SmolLM2-135M (the local stack's LLM); with
``--scripted-llm`` the LLM takes no model time, as in bench/agent_latency.py's simulated line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from devstack.demo_calls import SAMPLE_RATE as DEMO_RATE  # noqa: E402
from devstack.demo_calls import speak_caller  # noqa: E402
from devstack.livekit import LocalLiveKit  # noqa: E402
from devstack.phone_line import Say, place_inbound_call, to_line_pcm, wait_for_report  # noqa: E402
from devstack.stack import Service, Stack, python  # noqa: E402
from orchestration.defs.postcall.llama_server import bundled_gguf  # noqa: E402
from orchestration.resources.storage import RecordingsBucket  # noqa: E402

CALLER_LINES = [
    "Hi, I have a question about my electricity bill.",
    "When is the payment due this month?",
    "Can I pay it by card over the phone?",
    "What happens if I pay a few days late?",
    "Okay, and how do I change my plan?",
]
AGENT_NAME = "call-center-agent-bench"
BUCKET = "bench-recordings"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=4)
    parser.add_argument("--llm-url")
    parser.add_argument("--llm-model", default="smollm2-135m")
    parser.add_argument("--scripted-llm", action="store_true",
                        help="a scripted OpenAI-compatible LLM with zero model time, as bench/agent_latency.py uses")
    args = parser.parse_args()
    if args.scripted_llm:
        from doubles.llm_server import Rule, ScriptedLLM
        from doubles.llm_server import Say as LLMSay

        scripted = ScriptedLLM([Rule(r"\w", LLMSay("Sure. Your payment is due on the first day of each month."))]).start()
        args.llm_url, args.llm_model = scripted.base_url, "scripted"

    work = Path(tempfile.mkdtemp(prefix="bench-v2v-"))
    ports = {name: free_port() for name in ("gcs", "stt", "tts", "llm", "agent")}
    lk = LocalLiveKit(http_port=free_port(), rtc_tcp_port=free_port(), rtc_udp_port=free_port(), redis_port=free_port())
    llm_url = args.llm_url or f"http://127.0.0.1:{ports['llm']}/v1"
    services = [
        *lk.services(lk.write_config(work / "livekit.yaml")),
        Service("gcs", [python(), "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", str(ports["gcs"]),
                        "--in-memory", "--default-bucket", BUCKET], ports["gcs"]),
        Service("stt", [python(), "-m", "devstack.stt_server", "--host", "127.0.0.1", "--port", str(ports["stt"])],
                ports["stt"], ready_path="/health"),
        Service("tts", [python(), "-m", "tts.app"], ports["tts"], ready_path="/ready",
                env={"TTS_HOST": "127.0.0.1", "TTS_PORT": str(ports["tts"]), "TTS_BACKEND": "piper", "TTS_LOG_LEVEL": "warning"}),
    ]  # fmt: skip
    if not args.llm_url:
        services.append(
            Service("llm", [python(), "-m", "orchestration.defs.postcall.llama_server", "--model", bundled_gguf(), "--model_alias",
                            args.llm_model, "--host", "127.0.0.1", "--port", str(ports["llm"]), "--n_ctx", "4096", "--n_threads", "2"],
                    ports["llm"], ready_path="/v1/models")
        )  # fmt: skip
    services.append(
        Service("agent", [python(), "-m", "agent.worker", "start"], ports["agent"], ready_path="/", ready_log="registered worker", env={
            **lk.env(), "AGENT_NAME": AGENT_NAME, "WORKER_PORT": str(ports["agent"]), "WORKER_MAX_CALLS": "1",
            "STT_PROVIDER": "openai", "STT_BASE_URL": f"http://127.0.0.1:{ports['stt']}/v1",
            "LLM_BASE_URL": llm_url, "LLM_MODEL": args.llm_model,
            "TTS_BASE_URL": f"http://127.0.0.1:{ports['tts']}/v1", "TTS_MODEL": "piper", "TTS_VOICE": "joe",
            "RECORDINGS_BUCKET": BUCKET, "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{ports['gcs']}", "EGRESS_ENABLED": "false",
        })
    )  # fmt: skip
    stack = Stack(work, {**os.environ, "HF_HUB_OFFLINE": "1"})
    try:
        for svc in services:
            stack.start(svc)
        script = [Say(to_line_pcm(speak_caller(line, "en-us+m3"), DEMO_RATE), after_agent_quiet_s=1.0) for line in CALLER_LINES[: args.turns]]
        result = asyncio.run(
            place_inbound_call(lk.url, lk.api_key, lk.api_secret, caller_number="+14155550199", trunk_number="+14155550100",
                               agent_name=AGENT_NAME, script=script, agent_timeout_s=90, hang_up_after_s=3)
        )  # fmt: skip
        bucket = RecordingsBucket(bucket_name=BUCKET, project="local", emulator_host=f"http://127.0.0.1:{ports['gcs']}")
        report = wait_for_report(bucket, result.room, timeout_s=60)
    finally:
        stack.stop()
    line_ms = [round(v * 1000) for v in result.voice_to_voice_s]
    agent_ms = [round(t.voice_to_voice_ms) for t in report.latency if t.voice_to_voice_ms is not None]
    print(json.dumps({"turns": len(script), "answered": len(line_ms), "line_v2v_ms": line_ms, "agent_v2v_ms": agent_ms}))
    for name, values in (("line_v2v (caller's last frame -> agent's first frame heard)", line_ms),
                         ("agent_v2v (VAD end of speech -> first audio out, e2e_latency)", agent_ms)):  # fmt: skip
        if values:
            print(f"{name}: median {statistics.median(values):.0f} ms, min {min(values)}, max {max(values)} ({len(values)} turns)")


if __name__ == "__main__":
    main()
