"""The local stack: every embedded default on loopback, then ``dagster dev``.

Each process runs in its own process group so that Ctrl-C (or SIGTERM) stops the whole
tree: children get SIGTERM, then SIGKILL after a grace period; no orphan keeps a port.

An engine that exits while the stack runs is restarted on its own, after a delay that doubles
while it keeps exiting: one crashed engine no longer takes the browser, TTS and a Dagster run
in flight down with it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("devstack")

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Service:
    name: str
    argv: list[str]
    port: int
    ready_path: str | None = None  # HTTP path that answers 200 when ready; None = port open
    ready_timeout: float = 120.0
    requires_module: str | None = None  # skipped (with a warning) while that module does not exist yet
    env: dict[str, str] = field(default_factory=dict)
    # and, at start, a line its log must show (the agent worker: registered with livekit-server;
    # its HTTP port answers before that, and a room created earlier is never offered to it)
    ready_log: str | None = None


@dataclass(frozen=True)
class RestartPolicy:
    """How long to wait before restarting an engine that exited."""

    first_delay_s: float = 1.0
    max_delay_s: float = 60.0
    # An engine up this long before it exited starts over from first_delay_s.
    healthy_after_s: float = 60.0

    def next_delay(self, previous: float | None, uptime_s: float) -> float:
        if previous is None or uptime_s >= self.healthy_after_s:
            return self.first_delay_s
        return min(previous * 2, self.max_delay_s)


@dataclass
class Running:
    service: Service
    proc: subprocess.Popen
    log_path: Path
    started_at: float = field(default_factory=time.monotonic)
    restarts: int = 0
    delay_s: float | None = None  # the last restart delay: the next one doubles it
    restart_at: float | None = None  # set while exited and waiting for its restart
    back_up: bool = True  # False from a restart until it answers on its port again


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def is_ready(svc: Service, timeout: float = 2.0) -> bool:
    try:
        if svc.ready_path is None:
            return port_in_use(svc.port)
        with urllib.request.urlopen(f"http://127.0.0.1:{svc.port}{svc.ready_path}", timeout=timeout) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_ready(svc: Service, proc: subprocess.Popen, log_path: Path, log_from: int = 0) -> None:
    """Until ``svc`` answers (and its log shows ``ready_log`` past byte ``log_from``)."""
    deadline = time.monotonic() + svc.ready_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{svc.name} exited with code {proc.returncode} while starting; last log lines:\n{tail}")
        if is_ready(svc) and (svc.ready_log is None or svc.ready_log.encode() in log_path.read_bytes()[log_from:]):
            return
        time.sleep(0.25)
    raise TimeoutError(f"{svc.name} not ready on port {svc.port} after {svc.ready_timeout:.0f} s (log: {log_path})")


class Stack:
    def __init__(self, log_dir: Path, base_env: dict[str, str], restart: RestartPolicy | None = None):
        self.log_dir = log_dir
        self.base_env = base_env
        self.restart = restart or RestartPolicy()
        self.running: list[Running] = []

    def _spawn(self, svc: Service, log_path: Path) -> subprocess.Popen:
        with log_path.open("ab") as out:
            return subprocess.Popen(
                svc.argv,
                cwd=REPO_ROOT,
                env={**self.base_env, **svc.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # own process group: we stop the whole tree
            )

    def start(self, svc: Service) -> Running | None:
        if svc.requires_module and importlib.util.find_spec(svc.requires_module) is None:
            log.warning("skipping %s: module %s is not in this checkout", svc.name, svc.requires_module)
            return None
        if port_in_use(svc.port):
            raise RuntimeError(
                f"port {svc.port} for {svc.name} is already in use on 127.0.0.1: stop whatever holds it "
                f"(ss -ltnp 'sport = :{svc.port}') or choose another port via the environment"
            )
        log_path = self.log_dir / f"{svc.name}.log"
        log_from = log_path.stat().st_size if log_path.exists() else 0
        running = Running(svc, self._spawn(svc, log_path), log_path)
        self.running.append(running)
        log.info("starting %-14s on 127.0.0.1:%d (log: %s)", svc.name, svc.port, log_path)
        wait_ready(svc, running.proc, log_path, log_from)
        return running

    def supervise(self) -> None:
        """One look at every engine: schedule a restart for each that exited, restart those whose
        delay is over, and log those that answer again. Never waits for an engine."""
        now = time.monotonic()
        for r in self.running:
            if r.restart_at is None and r.proc.poll() is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(r.proc.pid, signal.SIGKILL)  # children left in its group would hold its port
                uptime = now - r.started_at
                r.delay_s = self.restart.next_delay(r.delay_s, uptime)
                r.restart_at = now + r.delay_s
                log.error(
                    "%s exited with code %s after %.0f s up (log: %s); restarting it in %.1f s",
                    r.service.name,
                    r.proc.returncode,
                    uptime,
                    r.log_path,
                    r.delay_s,
                )
            elif r.restart_at is not None and now >= r.restart_at:
                r.restarts += 1
                log.warning("restarting %s (restart %d)", r.service.name, r.restarts)
                r.proc, r.started_at, r.restart_at, r.back_up = self._spawn(r.service, r.log_path), now, None, False
            elif not r.back_up and r.proc.poll() is None and is_ready(r.service, timeout=0.5):
                r.back_up = True
                log.info("%s is back on 127.0.0.1:%d (restart %d)", r.service.name, r.service.port, r.restarts)

    def stop(self, grace: float = 10.0) -> None:
        for r in reversed(self.running):
            if r.proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(r.proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for r in reversed(self.running):
            remaining = max(deadline - time.monotonic(), 0.1)
            try:
                r.proc.wait(remaining)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s: killing it", r.service.name, grace)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(r.proc.pid, signal.SIGKILL)  # anything left in the group
        self.running.clear()


def run_forever(stack: Stack, on_ready: Callable[[], None]) -> int:
    """Supervise the stack until SIGINT or SIGTERM (then 0); the caller stops the stack."""
    stop = {"signal": None}

    def handle(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        on_ready()
        while stop["signal"] is None:
            stack.supervise()
            time.sleep(0.2)
        log.info("stopping the local stack")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def python() -> str:
    return sys.executable


def dagster_home(root: Path) -> Path:
    home = root / ".dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home
