"""Replays in the call browser: each stored replay (``callcenter.replay``, written by the Dagster
replay job) with its calls' original and replayed runs side by side, and a selection of calls
from the call list turned into a replay's run config.

Read from the recordings bucket's ``replay/`` prefix through ``callcenter.bucket.Recordings``,
never through Dagster; what is stored there is redacted when it is written. Registered in
``browser.main`` with one ``include_router``.
"""

from __future__ import annotations

import json
import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse

from browser.api.deps import get_recording_links, get_settings
from browser.api.templating import page
from browser.auth import current_analyst
from browser.filters import BadFilter, parse_list_query
from callcenter.bucket import Recordings
from callcenter.replay import ReplayResult, is_replay_id, list_replay_ids, read_result

router = APIRouter(dependencies=[Depends(current_analyst)])
log = logging.getLogger("browser.replays")

LIST_LIMIT = 50  # newest replays on the list page, each one object read
SELECTION_LIMIT = 500  # calls one replay run may take from a list filter (ReplayConfig.max_calls' ceiling is higher)


class UnknownReplay(Exception):
    pass


def _recordings(request: Request) -> Recordings:
    recordings = getattr(request.app.state, "replay_recordings", None)
    if recordings is None:
        settings = get_settings(request)
        recordings = Recordings(settings.recordings_bucket or "", settings.gcp_project, settings.storage_emulator_host)
        request.app.state.replay_recordings = recordings
    return recordings


def _page(request: Request, name: str, status: int = 200, **context: object) -> HTMLResponse:
    context.setdefault("nav", "replays")
    return page(request, name, status, **context)


@router.get("/replays", response_class=HTMLResponse, name="replay_list")
def replay_list(request: Request) -> HTMLResponse:
    recordings = _recordings(request)
    replays: list[ReplayResult] = []
    for replay_id in list_replay_ids(recordings)[:LIST_LIMIT]:
        result = read_result(recordings, replay_id)
        if result is not None:
            replays.append(result)
    return _page(request, "replays.html", replays=replays)


@router.get("/replays/new", response_class=HTMLResponse, name="replay_new")
def replay_new(request: Request) -> HTMLResponse:
    """The calls the list's filters select, as the replay job's run config (for the Dagster
    launchpad or the CLI): the browser starts no run itself."""
    q = parse_list_query(list(request.query_params.multi_items()))
    call_ids = [row.call_id for row in request.app.state.queries.export_rows(q, SELECTION_LIMIT + 1)]
    if not call_ids:
        raise BadFilter("no calls match these filters: nothing to replay")
    if len(call_ids) > SELECTION_LIMIT:
        raise BadFilter(
            f"more than {SELECTION_LIMIT} calls match: narrow the filters (or replay a day range from Dagster)"
        )
    config = {"ops": {"call_replays": {"config": {"call_ids": call_ids, "persona": None}}}}
    return _page(
        request,
        "replay_new.html",
        call_ids=call_ids,
        config_yaml=_yaml(call_ids),
        config_json=json.dumps(config),
    )


def _yaml(call_ids: list[str]) -> str:
    lines = ["ops:", "  call_replays:", "    config:", "      call_ids:"]
    lines += [f"        - {c}" for c in call_ids]
    lines += ["      # the settings to try, e.g.:", "      # persona: plan_renewal", "      # tts_voice: joe"]
    return "\n".join(lines)


@router.get("/replays/{replay_id}", response_class=HTMLResponse, name="replay_page")
def replay_page(request: Request, replay_id: str) -> HTMLResponse:
    if not is_replay_id(replay_id):
        raise BadFilter(f"{replay_id[:80]!r} is not a replay id (the Dagster run id of a call_replay run)")
    result = read_result(_recordings(request), replay_id)
    if result is None:
        return _page(
            request,
            "error.html",
            status=404,
            code=404,
            heading="Replay not found",
            message=f"no replay {replay_id} is stored: it is written when its call_replay run finishes",
        )
    analyst = getattr(request.state, "analyst", None)
    if analyst is not None:  # the page shows calls' (redacted) words: logged like a call page view
        request.app.state.audit.record(
            "replay_viewed", analyst, request.client.host if request.client else None, replay_id=replay_id
        )
    return _page(request, "replay.html", result=result, audio=_playback_urls(request, result))


def _playback_urls(request: Request, result: ReplayResult) -> dict[str, str]:
    """gs:// URI -> a URL the page can play (signed in production); a link that cannot be made
    is left out, and the rest of the page still shows."""
    links = get_recording_links(request)
    urls: dict[str, str] = {}
    for row in result.rows:
        for side in (row.original, row.replay):
            if side is not None and side.recording_uri and side.recording_uri not in urls:
                try:
                    urls[side.recording_uri] = links.playback_url(side.recording_uri)
                except Exception as exc:  # noqa: BLE001 - a broken link must not hide the comparison
                    log.warning("no playback URL for a replay recording: %s", type(exc).__name__)
    return urls
