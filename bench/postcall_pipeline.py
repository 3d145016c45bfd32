"""Post-call throughput with the local engines: calls per minute, split by stage.

Starts the GCS emulator and llama.cpp's server (SmolLM2-135M) on loopback, renders demo calls
(devstack.demo_calls: Piper agent + espeak-ng caller, stereo Ogg/Opus) into one day of the
bucket, then materializes transcripts -> analyses -> index through Dagster, like a sensor
run. Prints per-stage seconds (transcription incl. reads/decoding/redaction, analysis,
embedding, indexing) and the orchestration overhead: run wall time minus the stages' work.

    .venv/bin/python bench/postcall_pipeline.py [--calls 6] [--llm-threads 1] [--stt-threads 2]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}) before listening on {port}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=6)
    parser.add_argument("--llm-threads", type=int, default=1)
    parser.add_argument("--stt-threads", type=int, default=2)
    args = parser.parse_args()

    import dagster as dg

    from devstack.demo_calls import SCENARIOS, render_call
    from orchestration.defs.postcall import call_analyses, call_index, call_transcripts
    from orchestration.defs.postcall.analysis import CallLLM, StructuredOutput
    from orchestration.defs.postcall.llama_server import bundled_gguf
    from orchestration.defs.postcall.resources import CallEmbeddings, CallIndexResource, RedactionSettings
    from orchestration.defs.postcall.speech import WhisperSpeechToText
    from orchestration.resources.campaigns import LOCAL_CAMPAIGNS_DIR, CampaignCatalog
    from orchestration.resources.storage import RecordingsBucket

    procs: list[subprocess.Popen] = []
    try:
        gcs_port, llm_port = free_port(), free_port()
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1",
                 "--port", str(gcs_port), "--in-memory"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "orchestration.defs.postcall.llama_server", "--model", bundled_gguf(),
                 "--model_alias", "smollm2-135m", "--host", "127.0.0.1", "--port", str(llm_port),
                 "--n_ctx", "4096", "--n_threads", str(args.llm_threads)],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
        )  # fmt: skip
        wait_port(gcs_port, procs[0])
        wait_port(llm_port, procs[1])
        emulator = f"http://127.0.0.1:{gcs_port}"
        name = f"bench-{uuid.uuid4().hex[:8]}"
        bucket = RecordingsBucket(bucket_name=name, project="local", emulator_host=emulator)
        bucket.client.create_bucket(name)

        day = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
        audio_s = 0.0
        t = time.perf_counter()
        for i in range(args.calls):
            call = render_call(SCENARIOS[i % len(SCENARIOS)], day + timedelta(minutes=7 * i), random.Random(i), i)
            bucket.write_bytes(call.audio_object, call.audio, "audio/ogg")
            bucket.write_bytes(call.report_object, call.report.model_dump_json().encode(), "application/json")
            audio_s += call.report.duration_s
        print(f"rendered {args.calls} demo calls ({audio_s:.0f} s of audio) in {time.perf_counter() - t:.0f} s")

        with tempfile.TemporaryDirectory() as data_dir:
            resources = {
                "recordings_bucket": bucket,
                "speech_to_text": WhisperSpeechToText(cpu_threads=args.stt_threads),
                "call_llm": CallLLM(
                    base_url=f"http://127.0.0.1:{llm_port}/v1",
                    model="smollm2-135m",
                    structured_output=StructuredOutput.JSON_OBJECT_SCHEMA,
                    max_tokens=400,
                ),
                "call_embeddings": CallEmbeddings(),
                "call_index_store": CallIndexResource(data_dir=data_dir),
                "redaction": RedactionSettings(),
                "campaign_catalog": CampaignCatalog(directory=str(LOCAL_CAMPAIGNS_DIR)),
            }
            started = time.perf_counter()
            result = dg.materialize(
                [call_transcripts, call_analyses, call_index],
                partition_key=day.date().isoformat(),
                resources=resources,
                instance=dg.DagsterInstance.ephemeral(),
            )
            wall = time.perf_counter() - started
        assert result.success, "the postcall run failed"

        def meta(step: str, key: str) -> float:
            for event in result.get_asset_materialization_events():
                if event.step_key == step:
                    return float(event.materialization.metadata[key].value)
            raise KeyError(f"{step}.{key}")

        stages = {
            "transcription (read, decode, STT, redact)": meta("call_transcripts", "transcription_seconds"),
            "analysis (LLM)": meta("call_analyses", "llm_seconds"),
            "embedding (incl. model load)": meta("call_index", "embedding_seconds"),
            "indexing": meta("call_index", "index_seconds"),
        }
        work = sum(stages.values())
        overhead = wall - work
        n = args.calls
        print(f"\n{n} calls in {wall:.1f} s: {n / wall * 60:.1f} calls/min ({audio_s / wall:.1f}x real time)")
        print(f"{'stage':44} {'s total':>8} {'s/call':>8} {'share':>7}")
        for stage, seconds in stages.items():
            print(f"{stage:44} {seconds:8.2f} {seconds / n:8.2f} {seconds / wall:7.1%}")
        print(
            f"{'orchestration overhead (wall - stages)':44} {overhead:8.2f} {overhead / n:8.2f} {overhead / wall:7.1%}"
        )
        statuses = result.output_for_node("call_analyses")
        valid = [a.analysis for a in statuses.values() if a.status.value == "ok"]
        print(f"analyses valid: {len(valid)}/{len(statuses)}")
        # What an analyst would read as no summary at all: template or JSON debris ("{ {"), numbers.
        debris = [a.summary for a in valid if not re.match(r"^[A-Za-z][^{}]*$", a.summary)]
        print(f"valid analyses whose summary is debris: {len(debris)}/{len(valid)} {debris[:3]}")
        for a in valid[:3]:
            print(f"  summary: {a.summary[:100]!r}")
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
