"""The local stack keeps running when one engine exits: that engine is restarted with backoff,
and each exit and restart is logged. Real processes on loopback ports; no engine is loaded."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from devstack.stack import RestartPolicy, Service, Stack, port_in_use, run_forever
from tests.conftest import free_port

# Listens on its port and counts its starts in a file; exits with code 3 after `up_s` seconds
# on the starts listed in `crash_on` ("all" = every start).
ENGINE = """
import socket, sys, time
port, starts_file, up_s, crash_on = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
with open(starts_file, "a") as f:
    f.write("start\\n")
n = len(open(starts_file).read().split())
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen()
time.sleep(up_s)
if crash_on == "all" or str(n) in crash_on.split(","):
    sys.exit(3)
time.sleep(600)
"""


def engine(tmp_path: Path, name: str, up_s: float, crash_on: str) -> tuple[Service, Path]:
    port, starts = free_port(), tmp_path / f"{name}.starts"
    argv = [sys.executable, "-c", ENGINE, str(port), str(starts), str(up_s), crash_on]
    return Service(name, argv, port, ready_timeout=10), starts


def starts(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


def run_until(stack: Stack, done: Callable[[], bool], timeout: float = 20.0) -> tuple[int, bool]:
    """run_forever in this (the main) thread; SIGTERM as soon as `done()` holds, or at the timeout.
    Returns its exit code and whether it put the previous SIGTERM handler back."""
    returned = threading.Event()

    def watch() -> None:
        deadline = time.monotonic() + timeout
        while not done() and not returned.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not returned.is_set():
            os.kill(os.getpid(), signal.SIGTERM)

    previous = signal.getsignal(signal.SIGTERM)
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        code = run_forever(stack, lambda: None)
    finally:
        returned.set()
        watcher.join()
    return code, signal.getsignal(signal.SIGTERM) == previous


@pytest.fixture
def stack(tmp_path):
    stack = Stack(tmp_path / "logs", dict(os.environ), RestartPolicy(first_delay_s=0.2, max_delay_s=0.8))
    (tmp_path / "logs").mkdir()
    yield stack
    stack.stop(grace=5)


def test_an_engine_that_exits_is_restarted_and_the_others_keep_running(stack, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="devstack")
    flaky, flaky_starts = engine(tmp_path, "llm", up_s=0.5, crash_on="1")
    steady, steady_starts = engine(tmp_path, "browser", up_s=0, crash_on="")
    stack.start(flaky)
    stack.start(steady)
    steady_pid = next(r.proc.pid for r in stack.running if r.service.name == "browser")

    code, handlers_restored = run_until(stack, lambda: starts(flaky_starts) == 2 and port_in_use(flaky.port))

    assert code == 0  # stopped by the signal, not by the exit
    assert handlers_restored
    assert starts(flaky_starts) == 2 and port_in_use(flaky.port)
    browser = next(r for r in stack.running if r.service.name == "browser")
    assert browser.proc.poll() is None and browser.proc.pid == steady_pid and starts(steady_starts) == 1
    text = caplog.text
    assert re.search(r"llm exited with code 3 .*restarting it in 0\.2 s", text), text
    assert "restarting llm (restart 1)" in text


def test_an_engine_that_keeps_exiting_backs_off_up_to_the_cap(stack, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="devstack")
    crashing, crashing_starts = engine(tmp_path, "stt", up_s=0.3, crash_on="all")
    stack.start(crashing)

    code, _ = run_until(stack, lambda: starts(crashing_starts) >= 5)

    assert code == 0 and starts(crashing_starts) >= 5
    delays = [float(d) for d in re.findall(r"stt exited with code 3 .*restarting it in ([0-9.]+) s", caplog.text)]
    assert delays[:4] == [0.2, 0.4, 0.8, 0.8], caplog.text


def test_an_engine_that_stayed_up_starts_its_backoff_over():
    policy = RestartPolicy(first_delay_s=1, max_delay_s=60, healthy_after_s=30)
    assert policy.next_delay(None, uptime_s=0.5) == 1
    assert policy.next_delay(8, uptime_s=0.5) == 16
    assert policy.next_delay(48, uptime_s=0.5) == 60
    assert policy.next_delay(48, uptime_s=31) == 1
