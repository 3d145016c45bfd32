"""The tick's call limit from the Chatterbox pods' measured capacity (their real /metrics text,
served by prometheus_client on loopback), and the fallback when a pod cannot say."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry, Gauge, start_http_server

from orchestration.defs.dialing.resources import CallCapacity
from tests.conftest import free_port

BASE = {"stt_calls": 50, "llm_calls": 40, "tts_calls": 25, "recorder_calls": 32}


@pytest.fixture
def metrics_server() -> Iterator:
    servers = []

    def serve(**gauges: float) -> str:
        registry = CollectorRegistry()
        for name, value in gauges.items():
            Gauge(name, name, registry=registry).set(value)
        port = free_port()
        server, _thread = start_http_server(port, addr="127.0.0.1", registry=registry)
        servers.append(server)
        return f"http://127.0.0.1:{port}/metrics"

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def test_measured_tts_streams_become_calls_at_the_speaking_duty(metrics_server) -> None:
    url = metrics_server(tts_chatterbox_capacity_streams=12, tts_chatterbox_active_streams=3)
    limit, source = CallCapacity(**BASE, tts_metrics_urls=[url]).current_limit()
    assert (limit, source) == (30, "measured: 12 TTS streams = 30 calls")  # 12 / 0.4, under LLM's 40


def test_every_listed_pod_adds_its_streams(metrics_server) -> None:
    urls = [metrics_server(tts_chatterbox_capacity_streams=24), metrics_server(tts_chatterbox_capacity_streams=8)]
    limit, source = CallCapacity(**BASE, tts_metrics_urls=urls, headroom=0.5).current_limit()
    assert source == "measured: 32 TTS streams = 80 calls"
    assert limit == 16  # the scarcest is now the recorders (32), at half headroom


def test_an_unreadable_pod_falls_back_to_the_configured_figure_and_says_so() -> None:
    url = f"http://127.0.0.1:{free_port()}/metrics"  # nothing listens there
    limit, source = CallCapacity(**BASE, tts_metrics_urls=[url]).current_limit(timeout_s=1)
    assert limit == 25 and source.startswith(f"configured: {url} unreadable (ConnectError")


def test_a_pod_without_the_fast_engine_falls_back_and_names_the_setting(metrics_server) -> None:
    url = metrics_server(tts_queue_depth=0)
    limit, source = CallCapacity(**BASE, tts_metrics_urls=[url]).current_limit()
    assert limit == 25 and "TTS_CHATTERBOX_ENGINE=fast" in source


def test_without_urls_the_configured_figures_decide() -> None:
    assert CallCapacity(**BASE).current_limit() == (25, "configured")
