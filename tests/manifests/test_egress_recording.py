"""Recordings as Egress really writes them: the pinned Egress must take its SDK source for the
agent's request, the only path on which DUAL_CHANNEL_AGENT puts the agent and the caller on
separate channels.

Through Chrome (Egress's web source) every participant is mixed into both channels whatever
``audio_mixing`` says (livekit/egress#1121, livekit/agents#4462): post-call would transcribe the
mix twice, once as each speaker. Egress v1.9.0-v1.12.x take the SDK source for an audio-only
room composite only with the top-level config key ``enable_room_composite_sdk_source: true``
(pkg/config/base.go; there never was a ``room_composite:`` section, so
``room_composite.enable_room_composite_sdk_source`` is read by no release). v1.13.0 removed the
key (livekit/egress#1122) and always takes the SDK source when the request is audio only, with
no layout and no custom base URL (pkg/config/pipeline.go, ``ShouldUseSDKSource``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import yaml
from pydantic import SecretStr

from agent.recording import recording_request
from callcenter.ids import new_call_id
from tests.manifests.render import OVERLAYS, KubeObject, find

FIRST_SDK_SOURCE = (1, 9, 0)  # livekit/egress#817, behind the config key
SDK_SOURCE_BY_DEFAULT = (1, 13, 0)  # livekit/egress#1122, the key removed
VAR_REF = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


def _version(image: str) -> tuple[int, int, int]:
    tag = image.rpartition(":")[2]
    match = re.fullmatch(r"v(\d+)\.(\d+)\.(\d+)", tag)
    assert match, f"Egress is not pinned to a release ({image}): which source it takes cannot be known"
    return tuple(int(part) for part in match.groups())  # type: ignore[return-value]


def takes_sdk_source(image: str, config: dict, request) -> bool:
    """Whether this Egress release and config record ``request`` through the SDK source."""
    if not request.audio_only or request.layout or request.custom_base_url:
        return False  # Chrome, in every release
    version = _version(image)
    if version >= SDK_SOURCE_BY_DEFAULT:
        return True
    if version < FIRST_SDK_SOURCE:
        return False
    return config.get("enable_room_composite_sdk_source") is True


def _egress(objects: list[KubeObject]) -> tuple[str, dict]:
    container = find(objects, "Deployment", "livekit-egress")["spec"]["template"]["spec"]["containers"][0]
    body = next(e["value"] for e in container["env"] if e["name"] == "EGRESS_CONFIG_BODY")
    return container["image"], yaml.safe_load(VAR_REF.sub("0a1b2c", body))


def _agent_request():
    """The request the agent sends for every call (agent/recording.py), unchanged."""
    settings = SimpleNamespace(recordings_bucket="recordings", egress_gcp_credentials=SecretStr(""))
    started = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    call = SimpleNamespace(
        call_id=new_call_id(started), started_at=started, control=SimpleNamespace(room_name="call-room")
    )
    return recording_request(settings, call)


def test_the_agent_asks_for_a_dual_channel_audio_only_composite() -> None:
    from livekit import api

    request = _agent_request()
    assert request.audio_mixing == api.AudioMixing.DUAL_CHANNEL_AGENT
    assert request.audio_only and not request.layout and not request.custom_base_url


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pinned_egress_records_the_agent_request_through_the_sdk_source(
    rendered: dict[str, list[KubeObject]], overlay: str
) -> None:
    image, config = _egress(rendered[overlay])
    assert takes_sdk_source(image, config, _agent_request()), (
        f"{image} would record calls through Chrome: both channels the same mix. Pin Egress >= v1.13.0, "
        "or set enable_room_composite_sdk_source: true at the top of EGRESS_CONFIG_BODY"
    )
    assert "room_composite" not in config, "no Egress release reads a room_composite: section"


@pytest.mark.parametrize(
    ("image", "config", "expected"),
    [
        ("livekit/egress:v1.12.0", {}, False),  # livekit/egress#1121: Chrome, one mix in both channels
        ("livekit/egress:v1.12.0", {"room_composite": {"enable_room_composite_sdk_source": True}}, False),
        ("livekit/egress:v1.12.0", {"enable_room_composite_sdk_source": True}, True),
        ("livekit/egress:v1.8.6", {"enable_room_composite_sdk_source": True}, False),
        ("livekit/egress:v1.13.0", {}, True),
        ("livekit/egress:v1.14.1", {}, True),
    ],
)
def test_which_releases_and_configs_take_the_sdk_source(image: str, config: dict, expected: bool) -> None:
    assert takes_sdk_source(image, config, _agent_request()) is expected


def test_a_layout_sends_any_release_through_chrome() -> None:
    request = _agent_request()
    request.layout = "speaker"  # livekit/agents#4462's request
    assert not takes_sdk_source("livekit/egress:v1.13.0", {}, request)
