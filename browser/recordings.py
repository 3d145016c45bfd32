"""The recordings bucket as the browser sees it: playback URLs, and per-turn latency from the session report.

Playback: a V4 signed URL in production, the emulator's media URL locally, both from
``callcenter.bucket.Recordings`` (the one place the bucket is opened and read).

Per-turn latency lives in the agent's ``session.json`` next to the recording (the index keeps
only per-call percentiles). Only its ``latency`` list is read: the report's turns are the raw,
unredacted live transcript and never reach a page.
"""

from __future__ import annotations

import json
import logging
import posixpath
from datetime import timedelta

from pydantic import TypeAdapter, ValidationError

from browser.settings import BrowserSettings
from callcenter.bucket import Recordings, split_gs_uri
from callcenter.paths import REPORT_FILENAME, report_path
from callcenter.record import CallRecord
from callcenter.report import TurnLatency

log = logging.getLogger(__name__)
_LATENCIES = TypeAdapter(list[TurnLatency])
REPORT_READ_TIMEOUT_S = 3.0


class RecordingLinks:
    def __init__(self, settings: BrowserSettings) -> None:
        self._settings = settings
        self._recordings = Recordings(
            settings.recordings_bucket or "", settings.gcp_project, settings.storage_emulator_host
        )

    def playback_url(self, recording_uri: str) -> str:
        return self._recordings.playback_url(recording_uri, timedelta(minutes=self._settings.signed_url_minutes))

    def _report_location(self, record: CallRecord) -> tuple[str, str] | None:
        if record.recording_uri:
            bucket, audio = split_gs_uri(record.recording_uri, self._settings.recordings_bucket)
            return bucket, posixpath.join(posixpath.dirname(audio), REPORT_FILENAME)
        if self._settings.recordings_bucket:
            return self._settings.recordings_bucket, report_path(record.call_id)
        return None

    def turn_latency(self, record: CallRecord) -> list[TurnLatency] | None:
        """The call's per-turn latency from its session report; None when the report cannot be read."""
        where = self._report_location(record)
        if where is None:
            return None
        bucket, name = where
        try:
            raw = (
                self._recordings.client.bucket(bucket)
                .blob(name)
                .download_as_bytes(timeout=REPORT_READ_TIMEOUT_S, retry=None)
            )  # a page view does not wait on retries
            return _LATENCIES.validate_python(json.loads(raw).get("latency", []))
        except (ValidationError, ValueError, AttributeError) as exc:
            log.warning("session report gs://%s/%s has no readable latency: %s", bucket, name, exc)
        except Exception as exc:  # bucket unreachable or object missing: the page falls back to medians
            log.warning("cannot read session report gs://%s/%s: %s", bucket, name, type(exc).__name__)
        return None
