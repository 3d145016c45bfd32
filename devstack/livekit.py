"""The real livekit-server on loopback, with its Redis: the local stack's and the tests' LiveKit.

``scripts/setup.sh`` builds livekit-server from its Go module (module@version) and links it at
``.local/bin/livekit-server``. Its Redis carries the SIP trunk and dispatch-rule store and the
agent dispatch state, exactly as in the cluster. Everything binds to 127.0.0.1, with one TCP and
one UDP port for media (ICE over a single muxed UDP port): nothing leaves the machine.

The API key and secret are local-only development values (loopback, never a Kubernetes Secret).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from devstack.stack import REPO_ROOT, Service

DEV_API_KEY = "devkey"
DEV_API_SECRET = "callcenter-local-only-secret-0123456789abcdef"


def livekit_server_bin() -> Path:
    """The binary setup built: ``LIVEKIT_SERVER_BIN``, else ``.local/bin/livekit-server``."""
    path = Path(os.environ.get("LIVEKIT_SERVER_BIN") or REPO_ROOT / ".local" / "bin" / "livekit-server")
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: run scripts/setup.sh (it builds livekit-server from its Go module)")
    return path


def redis_server_bin() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise FileNotFoundError("redis-server is missing: run scripts/setup.sh (Debian package redis-server)")
    return found


@dataclass(frozen=True)
class LocalLiveKit:
    """Ports and credentials of one local LiveKit: server HTTP/WebSocket, media TCP and UDP, Redis."""

    http_port: int
    rtc_tcp_port: int
    rtc_udp_port: int
    redis_port: int
    api_key: str = DEV_API_KEY
    api_secret: str = DEV_API_SECRET

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.http_port}"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def config(self, webhook_urls: list[str] | None = None) -> dict:
        cfg: dict = {
            "port": self.http_port,
            "bind_addresses": ["127.0.0.1"],
            "rtc": {
                "tcp_port": self.rtc_tcp_port,
                "udp_port": self.rtc_udp_port,
                "use_external_ip": False,
                "node_ip": "127.0.0.1",
            },
            "redis": {"address": f"127.0.0.1:{self.redis_port}"},
            "keys": {self.api_key: self.api_secret},
            "logging": {"level": "info"},
            # one node on a 2-core machine that also runs the models: never refuse a room for load
            "node_selector": {"kind": "any", "sysload_limit": 1000},
            "room": {"empty_timeout": 60, "departure_timeout": 5},
        }
        if webhook_urls:
            cfg["webhook"] = {"api_key": self.api_key, "urls": webhook_urls}
        return cfg

    def write_config(self, path: Path, webhook_urls: list[str] | None = None) -> Path:
        path.write_text(yaml.safe_dump(self.config(webhook_urls), sort_keys=False))
        return path

    def services(self, config_path: Path) -> list[Service]:
        """Redis, then livekit-server, as the local stack starts them."""
        return [
            Service(
                "redis",
                [redis_server_bin(), "--bind", "127.0.0.1", "--port", str(self.redis_port), "--save", "", "--appendonly", "no"],
                self.redis_port,
            ),
            Service("livekit-server", [str(livekit_server_bin()), "--config", str(config_path)], self.http_port, ready_path="/"),
        ]

    def env(self) -> dict[str, str]:
        """What every LiveKit client of the stack reads (agent, dialing, rollout)."""
        return {"LIVEKIT_URL": self.url, "LIVEKIT_API_KEY": self.api_key, "LIVEKIT_API_SECRET": self.api_secret}
