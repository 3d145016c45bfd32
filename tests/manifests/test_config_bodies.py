"""The YAML bodies handed to LiveKit server, SIP and Egress use only fields those servers know.

LiveKit server parses its config strictly (a misspelt key stops it at start); SIP and Egress
ignore unknown keys (a misspelt key is silently lost, e.g. an RTP range or a bucket). The
field names below are the yaml tags of the pinned releases' config structs
(livekit-server pkg/config, livekit/sip pkg/config, livekit/egress pkg/config).
"""

from __future__ import annotations

import re

import pytest
import yaml

from tests.manifests.render import OVERLAYS, KubeObject, find

LIVEKIT_TOP = {
    "port", "bind_addresses", "prometheus_port", "prometheus", "rtc", "redis", "audio", "video", "room",
    "turn", "ingress", "sip", "webhook", "node_selector", "key_file", "keys", "region", "signal_relay",
    "psrpc", "log_level", "logging", "limit", "development", "metric",
}  # fmt: skip
LIVEKIT_RTC = {
    "udp_port", "tcp_port", "port_range_start", "port_range_end", "ips", "use_external_ip", "use_ice_lite",
    "node_ip", "stun_servers", "turn_servers", "interfaces", "allow_tcp_fallback", "congestion_control",
    "packet_buffer_size", "packet_buffer_size_video", "packet_buffer_size_audio", "pli_throttle",
    "reconnect_on_publication_error", "reconnect_on_subscription_error", "reconnect_on_data_channel_error",
    "datachannel_slow_threshold", "forward_stats", "enable_loopback_candidate", "use_mdns",
}  # fmt: skip
LIVEKIT_TURN_SERVER = {"host", "port", "protocol", "username", "credential"}
LIVEKIT_ROOM = {
    "auto_create", "enabled_codecs", "max_participants", "empty_timeout", "departure_timeout",
    "enable_remote_unmute", "playout_delay", "sync_streams", "create_room_enabled", "create_room_timeout",
    "create_room_attempts", "room_configurations",
}  # fmt: skip
LOGGING = {"json", "level", "sample", "component_levels", "pion_level"}
REDIS = {"address", "username", "password", "db", "use_tls", "sentinel_master_name", "cluster_addresses"}
SIP_TOP = {
    "redis", "api_key", "api_secret", "ws_url", "health_port", "prometheus_port", "pprof_port", "sip_port",
    "sip_port_listen", "sip_hostname", "sip_ringing_interval", "tcp", "tls", "rtp_port", "logging",
    "cluster_id", "max_cpu_utilization", "use_external_ip", "local_net", "nat_1_to_1_ip", "listen_ip",
    "media_use_external_ip", "media_nat_1_to_1_ip", "media_timeout", "media_timeout_initial", "codecs",
    "hide_inbound_port", "add_record_route", "audio_dtmf", "enable_jitter_buffer",
    "enable_jitter_buffer_prob", "jaeger_url", "experimental",
}  # fmt: skip
EGRESS_TOP = {
    "redis", "api_key", "api_secret", "ws_url", "health_port", "template_port", "prometheus_port",
    "debug_handler_port", "cpu_cost", "logging", "log_level", "template_base", "enable_chrome_sandbox",
    "insecure", "cluster_id", "s3", "azure", "gcp", "alioss", "storage", "session_limits", "latency",
}  # fmt: skip
EGRESS_GCP = {"credentials_json", "bucket", "proxy_config"}
EGRESS_CPU_COST = {
    "max_cpu_utilization", "max_memory", "memory_cost", "max_concurrent_web", "room_composite_cpu_cost",
    "audio_room_composite_cpu_cost", "sdk_audio_room_composite_cpu_cost", "web_cpu_cost", "audio_web_cpu_cost",
    "participant_cpu_cost", "track_composite_cpu_cost", "track_cpu_cost", "max_pulse_clients",
}  # fmt: skip
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _body(objects: list[KubeObject], deployment: str, variable: str) -> dict:
    container = find(objects, "Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]
    value = next(e["value"] for e in container["env"] if e["name"] == variable)
    # placeholders stand in for what the kubelet expands; hex keeps every value a plain scalar
    return yaml.safe_load(VAR_REF.sub("0a1b2c", value))


def _unknown(section: dict, known: set[str]) -> set[str]:
    return set(section) - known


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_livekit_server_config_uses_known_fields(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    config = _body(rendered[overlay], "livekit-server", "LIVEKIT_CONFIG")
    assert not _unknown(config, LIVEKIT_TOP)
    assert not _unknown(config["rtc"], LIVEKIT_RTC)
    for server in config["rtc"]["turn_servers"]:
        assert not _unknown(server, LIVEKIT_TURN_SERVER)
        assert server["protocol"] in {"udp", "tcp", "tls"}
    assert not _unknown(config["room"], LIVEKIT_ROOM)
    assert not _unknown(config["logging"], LOGGING)
    assert not _unknown(config["redis"], REDIS)
    assert "keys" not in config, "API keys come from LIVEKIT_KEYS (a Secret), not the config body"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_sip_config_uses_known_fields(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    for deployment in (
        o["metadata"]["name"]
        for o in rendered[overlay]
        if o["metadata"]["name"].startswith("livekit-sip-") and o["kind"] == "Deployment"
    ):
        config = _body(rendered[overlay], deployment, "SIP_CONFIG_BODY")
        assert not _unknown(config, SIP_TOP), deployment
        assert not _unknown(config["redis"], REDIS)
        assert not {"api_key", "api_secret"} & set(config), "SIP reads its key from LIVEKIT_API_KEY/SECRET (a Secret)"
        assert re.fullmatch(r"\d+-\d+", config["rtp_port"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_egress_config_uses_known_fields(rendered: dict[str, list[KubeObject]], overlay: str) -> None:
    config = _body(rendered[overlay], "livekit-egress", "EGRESS_CONFIG_BODY")
    assert not _unknown(config, EGRESS_TOP)
    assert not _unknown(config["gcp"], EGRESS_GCP)
    assert "credentials_json" not in config["gcp"], "Workload Identity, never a key file"
    assert not _unknown(config["cpu_cost"], EGRESS_CPU_COST)
    assert not {"api_key", "api_secret"} & set(config)


def test_a_misspelt_field_is_caught() -> None:
    assert _unknown({"rtp_ports": "10000-10099"}, SIP_TOP) == {"rtp_ports"}
