"""The recordings bucket as the browser sees it: playback URLs, and per-turn latency from the session report.

Playback: a V4 signed URL in production, the emulator's media URL locally (the same rule as
``orchestration.resources.storage.RecordingsBucket.playback_url``; kept free of Dagster,
which the browser's image does not ship).

Per-turn latency lives in the agent's ``session.json`` next to the recording (the index keeps
only per-call percentiles). Only its ``latency`` list is read: the report's turns are the raw,
unredacted live transcript and never reach a page.
"""

from __future__ import annotations

import json
import logging
import posixpath
from datetime import timedelta
from functools import cached_property
from urllib.parse import quote

from pydantic import TypeAdapter, ValidationError

from browser.settings import BrowserSettings
from callcenter.paths import REPORT_FILENAME, report_path
from callcenter.record import CallRecord
from callcenter.report import TurnLatency

log = logging.getLogger(__name__)
_LATENCIES = TypeAdapter(list[TurnLatency])
REPORT_READ_TIMEOUT_S = 3.0


def split_gs_uri(uri: str, default_bucket: str | None) -> tuple[str, str]:
    """``gs://bucket/name`` -> (bucket, name); a bare object name lives in the default bucket."""
    if uri.startswith("gs://"):
        bucket, _, name = uri[5:].partition("/")
        if not bucket or not name:
            raise ValueError(f"recording URI {uri!r} is not gs://<bucket>/<object>")
        return bucket, name
    if not default_bucket:
        raise ValueError(f"recording {uri!r} names no bucket and CALLCENTER_RECORDINGS_BUCKET is not set")
    return default_bucket, uri.lstrip("/")


class RecordingLinks:
    def __init__(self, settings: BrowserSettings) -> None:
        self._settings = settings

    @cached_property
    def _client(self):
        from google.cloud import storage

        emulator = self._settings.storage_emulator_host
        if emulator:
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(
                project=self._settings.gcp_project or "local",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": emulator},
            )
        return storage.Client(project=self._settings.gcp_project)

    def playback_url(self, recording_uri: str) -> str:
        bucket, name = split_gs_uri(recording_uri, self._settings.recordings_bucket)
        emulator = self._settings.storage_emulator_host
        if emulator:
            return f"{emulator.rstrip('/')}/download/storage/v1/b/{bucket}/o/{quote(name, safe='')}?alt=media"
        return self._signed_url(bucket, name)

    def _signed_url(self, bucket: str, name: str) -> str:
        blob = self._client.bucket(bucket).blob(name)
        expiration = timedelta(minutes=self._settings.signed_url_minutes)
        credentials = self._client._credentials
        if getattr(credentials, "signer", None) is not None:
            return blob.generate_signed_url(version="v4", expiration=expiration, method="GET")
        # Workload Identity credentials hold no private key: sign through the IAM signBlob API
        # by passing the service account and a fresh access token.
        from google.auth.transport.requests import Request

        if not credentials.valid:
            credentials.refresh(Request())
        return blob.generate_signed_url(
            version="v4",
            expiration=expiration,
            method="GET",
            service_account_email=credentials.service_account_email,
            access_token=credentials.token,
        )

    def _report_location(self, record: CallRecord) -> tuple[str, str] | None:
        if record.recording_uri:
            bucket, audio = split_gs_uri(record.recording_uri, self._settings.recordings_bucket)
            return bucket, posixpath.join(posixpath.dirname(audio), REPORT_FILENAME)
        if self._settings.recordings_bucket:
            return self._settings.recordings_bucket, report_path(record.call_id, record.started_at)
        return None

    def turn_latency(self, record: CallRecord) -> list[TurnLatency] | None:
        """The call's per-turn latency from its session report; None when the report cannot be read."""
        where = self._report_location(record)
        if where is None:
            return None
        bucket, name = where
        try:
            raw = (
                self._client.bucket(bucket).blob(name).download_as_bytes(timeout=REPORT_READ_TIMEOUT_S, retry=None)
            )  # a page view does not wait on retries
            return _LATENCIES.validate_python(json.loads(raw).get("latency", []))
        except (ValidationError, ValueError, AttributeError) as exc:
            log.warning("session report gs://%s/%s has no readable latency: %s", bucket, name, exc)
        except Exception as exc:  # bucket unreachable or object missing: the page falls back to medians
            log.warning("cannot read session report gs://%s/%s: %s", bucket, name, type(exc).__name__)
        return None
