"""The recordings bucket as the browser sees it: playback URLs only.

A V4 signed URL in production, the emulator's media URL locally, both from
``callcenter.bucket.Recordings`` (the one place the bucket is opened and read). Everything else
on a page, per-turn latency included, comes from the call index: the browser never reads a
session report (its turns are the raw, unredacted live transcript).
"""

from __future__ import annotations

from datetime import timedelta

from browser.core.config import BrowserSettings
from callcenter.bucket import Recordings


class RecordingLinks:
    def __init__(self, settings: BrowserSettings) -> None:
        self._settings = settings
        self._recordings = Recordings(
            settings.recordings_bucket or "", settings.gcp_project, settings.storage_emulator_host
        )

    def playback_url(self, recording_uri: str) -> str:
        return self._recordings.playback_url(recording_uri, timedelta(minutes=self._settings.signed_url_minutes))
