"""Playing a recorded caller back through an agent worker that runs with the replay's settings.

The worker is the production one (``python -m agent.worker start``), started for this replay
with the settings changed, a name of its own (explicit dispatch reaches it and nothing else) and
its own scratch bucket for what it writes: the replayed calls' recordings, session reports and
any do-not-call request never reach ``recordings/`` of the real bucket, so post-call never indexes
them and dialing's sweep never suppresses a number for them. The caller is devstack/phone_line.py,
the named stand-in for livekit-sip, speaking each caller turn into a fresh room.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from callcenter.bucket import Recordings, list_calls
from callcenter.replay import ReplaySettings
from callcenter.report import SessionReport, parse_report
from orchestration.defs.replay.caller_turns import CallerTurn

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
# fictitious numbers (555-01xx): a replay never carries the original caller's number
REPLAY_CALLER_NUMBER = "+15555550142"
REPLAY_LINE_NUMBER = "+15555550100"
REPLAY_ROOM_PREFIX = "replay-"

# ReplaySettings field -> the agent's environment variable (agent/settings.py)
SETTING_ENV = {
    "persona": "INBOUND_PERSONA",
    "personas_dir": "PERSONAS_DIR",
    "llm_model": "LLM_MODEL",
    "llm_base_url": "LLM_BASE_URL",
    "tts_model": "TTS_MODEL",
    "tts_voice": "TTS_VOICE",
    "vad_min_silence_s": "VAD_MIN_SILENCE_S",
}


class ReplayFailed(Exception):
    """One call could not be replayed; ``str(exc)`` is the reason kept on its row (no words, no numbers)."""


def worker_env(
    base: dict[str, str],
    settings: ReplaySettings,
    *,
    agent_name: str,
    scratch_bucket: str,
    livekit_env: dict[str, str],
) -> dict[str, str]:
    """The replay worker's environment: the given base, the replay's changes on top, and what
    keeps it apart from production (its name, its port, its bucket, no transfer target)."""
    env = {**os.environ, **base, **livekit_env}
    for field, value in settings.model_dump().items():
        if value is not None:
            env[SETTING_ENV[field]] = str(value)
    env.update(
        {
            "AGENT_NAME": agent_name,
            "WORKER_PORT": str(_free_port()),
            "RECORDINGS_BUCKET": scratch_bucket,
            # a replayed caller asking for a human must never ring the real queue
            "INBOUND_TRANSFER_NUMBER": "",
        }
    )
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def agent_worker(env: dict[str, str], log_path: Path, start_timeout_s: float) -> Iterator[subprocess.Popen]:
    """The agent worker, registered with LiveKit; stopped (its calls' reports written) on exit."""
    with log_path.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "agent.worker", "start"],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + start_timeout_s
        while b"registered worker" not in log_path.read_bytes():
            if proc.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
                raise ReplayFailed(f"the replay's agent worker exited ({proc.returncode}): {tail[0][-300:]}")
            if time.monotonic() > deadline:
                raise ReplayFailed(f"the replay's agent worker did not register within {start_timeout_s:.0f} s")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@dataclass(frozen=True)
class LiveKitLine:
    url: str
    api_key: str
    api_secret: str


def play_caller(
    line: LiveKitLine, agent_name: str, turns: Sequence[CallerTurn], *, agent_timeout_s: float, hang_up_after_s: float
):  # noqa: ANN201
    """One call into a fresh room: each caller turn once the agent has answered the one before
    and been quiet for the original gap; hangs up ``hang_up_after_s`` after the agent's last words."""
    from devstack.phone_line import Say, place_inbound_call

    script = [Say(t.pcm, after_agent_quiet_s=t.gap_s) for t in turns]
    result = asyncio.run(
        place_inbound_call(
            line.url,
            line.api_key,
            line.api_secret,
            caller_number=REPLAY_CALLER_NUMBER,
            trunk_number=REPLAY_LINE_NUMBER,
            room_prefix=REPLAY_ROOM_PREFIX,
            agent_name=agent_name,
            script=script,
            agent_timeout_s=agent_timeout_s,
            hang_up_after_s=hang_up_after_s,
        )
    )
    if not result.agent_joined:
        raise ReplayFailed(f"no agent joined the replay room within {agent_timeout_s:.0f} s")
    return result


def wait_for_replay_report(
    scratch: Recordings, room: str, placed_at: datetime, timeout_s: float, poll_s: float = 0.5
) -> SessionReport:
    """The replayed call's session report, found in the scratch bucket by its room: only calls
    minted since the call was placed are listed (the one lister, ``callcenter.bucket.list_calls``)."""
    deadline = time.monotonic() + timeout_s
    seen: set[str] = set()
    while time.monotonic() < deadline:
        listing = list_calls(scratch.list_objects, placed_at, datetime.now(UTC), timedelta(minutes=1))
        for obj in listing.reports.values():
            if obj.key in seen:
                continue
            seen.add(obj.key)
            report = parse_report(scratch.read_bytes(obj.name))
            if report.room == room:
                return report
        time.sleep(poll_s)
    raise ReplayFailed(f"the agent wrote no session report for the replay within {timeout_s:.0f} s of the hang-up")
