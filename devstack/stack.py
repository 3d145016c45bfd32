"""The local stack: every embedded default on loopback, then ``dagster dev``.

Each process runs in its own process group so that Ctrl-C (or SIGTERM) stops the whole
tree: children get SIGTERM, then SIGKILL after a grace period; no orphan keeps a port.
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


@dataclass
class Running:
    service: Service
    proc: subprocess.Popen
    log_path: Path


def port_in_use(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def wait_ready(svc: Service, proc: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + svc.ready_timeout
    url = f"http://127.0.0.1:{svc.port}{svc.ready_path}" if svc.ready_path else None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{svc.name} exited with code {proc.returncode} while starting; last log lines:\n{tail}")
        try:
            if url is None:
                if port_in_use(svc.port):
                    return
            else:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
        except OSError:
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{svc.name} not ready on port {svc.port} after {svc.ready_timeout:.0f} s (log: {log_path})")


class Stack:
    def __init__(self, log_dir: Path, base_env: dict[str, str]):
        self.log_dir = log_dir
        self.base_env = base_env
        self.running: list[Running] = []

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
        out = log_path.open("ab")
        proc = subprocess.Popen(
            svc.argv,
            cwd=REPO_ROOT,
            env={**self.base_env, **svc.env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group: we stop the whole tree
        )
        running = Running(svc, proc, log_path)
        self.running.append(running)
        log.info("starting %-14s on 127.0.0.1:%d (log: %s)", svc.name, svc.port, log_path)
        wait_ready(svc, proc, log_path)
        return running

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

    def first_exit(self) -> Running | None:
        return next((r for r in self.running if r.proc.poll() is not None), None)


def run_forever(stack: Stack, on_ready: Callable[[], None]) -> int:
    stop = {"signal": None}

    def handle(signum: int, _frame: object) -> None:
        stop["signal"] = signum

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)
    on_ready()
    while stop["signal"] is None:
        dead = stack.first_exit()
        if dead is not None:
            log.error("%s exited with code %s (log: %s); stopping the stack", dead.service.name, dead.proc.returncode, dead.log_path)
            return 1
        time.sleep(0.5)
    log.info("stopping the local stack")
    return 0


def python() -> str:
    return sys.executable


def dagster_home(root: Path) -> Path:
    home = root / ".dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copyfile(REPO_ROOT / "dagster.yaml", home / "dagster.yaml")
    return home
