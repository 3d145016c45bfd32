"""The recordings bucket, opened, listed and read here and nowhere else.

Every domain that touches the bucket goes through this module: the agent (writes the session
report), the Dagster code location (``orchestration.resources.storage.RecordingsBucket`` wraps
:class:`Recordings` as a resource), the call browser (playback links) and the local stack.

- :func:`open_client`: GCS with Application Default Credentials (Workload Identity on GKE);
  the gcp-storage-emulator with anonymous credentials when an emulator host is set.
- :class:`Recordings`: one bucket: list a prefix, read an object or a call's report (its path
  comes from the call id alone, ``callcenter.paths``), write, playback URLs.
- :func:`list_calls` and :class:`ReportCursor`: the one lister of completed calls since a
  watermark, shared by post-call discovery and dialing's sweep of inbound do-not-call requests.

The watermark trails the newest ``updated`` seen by ``SETTLE``: prefixes (and pages) are listed
one after another, so a report finalized during a listing can carry an ``updated`` older than one
listed later in the same pass; and the bucket's clock and ours differ a little. Jumping to the
newest time seen would skip such a report for good. Trailing, it is listed again next time;
objects already handled at or after the watermark are known by key (``at_since``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import quote

from callcenter.paths import (
    AUDIO_FILENAME,
    DO_NOT_CALL_FILENAME,
    REPORT_FILENAME,
    parse_object_name,
    prefixes_to_list,
    report_path,
)
from callcenter.report import SessionReport, parse_report

if TYPE_CHECKING:
    from google.cloud import storage

# How far a listing's watermark trails its pass: the pass's own listing time plus clock skew.
SETTLE = timedelta(minutes=2)


def open_client(project: str | None = None, emulator_host: str | None = None) -> storage.Client:
    """GCS via Application Default Credentials (Workload Identity on GKE); with ``emulator_host``
    (``STORAGE_EMULATOR_HOST`` locally), the emulator with anonymous credentials."""
    from google.cloud import storage

    if emulator_host:
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(
            project=project or "local",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": emulator_host},
        )
    return storage.Client(project=project)


def split_gs_uri(uri: str, default_bucket: str | None = None) -> tuple[str, str]:
    """``gs://bucket/name`` -> (bucket, name); a bare object name lives in ``default_bucket``."""
    if uri.startswith("gs://"):
        bucket, _, name = uri[5:].partition("/")
        if not bucket or not name:
            raise ValueError(f"{uri!r} is not gs://<bucket>/<object>")
        return bucket, name
    if not default_bucket:
        raise ValueError(f"{uri!r} names no bucket and no recordings bucket is configured")
    return default_bucket, uri.lstrip("/")


@dataclass(frozen=True)
class ListedObject:
    name: str
    generation: int
    updated: datetime

    @property
    def key(self) -> str:
        """Names one version of one object: a re-upload is a new key."""
        return f"{self.name}#{self.generation}"


class Recordings:
    """One recordings bucket (``callcenter.paths`` layout); the client opens on first use."""

    def __init__(self, bucket_name: str, project: str | None = None, emulator_host: str | None = None) -> None:
        self.bucket_name = bucket_name
        self.project = project
        self.emulator_host = emulator_host.rstrip("/") if emulator_host else None

    @cached_property
    def client(self) -> storage.Client:
        return open_client(self.project, self.emulator_host)

    @property
    def bucket(self) -> storage.Bucket:
        return self.client.bucket(self.bucket_name)

    def uri(self, object_name: str) -> str:
        return f"gs://{self.bucket_name}/{object_name}"

    def list_prefix(self, prefix: str, start_offset: str | None = None) -> list[storage.Blob]:
        """Objects under ``prefix`` (never the whole bucket), sorted by name, none before ``start_offset``."""
        blobs = self.client.list_blobs(self.bucket_name, prefix=prefix, start_offset=start_offset)
        # servers that ignore startOffset (the emulator) list from the prefix
        return sorted((b for b in blobs if start_offset is None or b.name >= start_offset), key=lambda b: b.name)

    def list_objects(self, prefix: str, offset: str) -> Iterator[ListedObject]:
        """The lister :func:`list_calls` takes: ``offset`` equal to ``prefix`` lists the whole prefix."""
        for blob in self.list_prefix(prefix, start_offset=offset if offset != prefix else None):
            yield ListedObject(blob.name, int(blob.generation), blob.updated)

    def read_bytes(
        self, object_name: str, *, timeout: float = 60, retry: bool = True, max_bytes: int | None = None
    ) -> bytes:
        """The object's bytes; ``google.api_core.exceptions.NotFound`` when it is absent. With
        ``max_bytes``, at most ``max_bytes + 1`` of them (a ranged read): more than ``max_bytes``
        returned means the object is larger, without downloading it whole."""
        blob = self.bucket.blob(object_name)
        ranged = {"start": 0, "end": max_bytes} if max_bytes is not None else {}
        if retry:
            return blob.download_as_bytes(timeout=timeout, **ranged)
        return blob.download_as_bytes(timeout=timeout, retry=None, **ranged)

    def read_if_present(self, object_name: str) -> bytes | None:
        from google.api_core.exceptions import NotFound

        try:
            return self.read_bytes(object_name)
        except NotFound:
            return None

    def read_report(self, call_id: str) -> SessionReport | None:
        """The call's session report; None until it lands. An unreadable one raises ValueError
        (pydantic's ValidationError is one) naming what is wrong."""
        raw = self.read_if_present(report_path(call_id))
        return None if raw is None else parse_report(raw)

    def read_uri(self, uri: str) -> bytes:
        """The object ``gs://<bucket>/<object>``, in this bucket or another one the same client
        may read (campaign contact lists, do-not-call registry files)."""
        if not uri.startswith("gs://"):
            raise ValueError(f"{uri!r} is not gs://<bucket>/<object>")
        bucket_name, object_name = split_gs_uri(uri)
        return self.client.bucket(bucket_name).blob(object_name).download_as_bytes()

    def write_bytes(self, object_name: str, data: bytes | str, content_type: str, **upload) -> None:
        self.bucket.blob(object_name).upload_from_string(data, content_type=content_type, **upload)

    def exists(self, object_name: str) -> bool:
        return self.bucket.blob(object_name).exists()

    def playback_url(self, uri_or_name: str, expires: timedelta = timedelta(minutes=15)) -> str:
        """A URL a browser can play: the emulator's media URL locally, a V4 signed URL in production."""
        bucket_name, name = split_gs_uri(uri_or_name, self.bucket_name)
        if self.emulator_host:
            return f"{self.emulator_host}/download/storage/v1/b/{bucket_name}/o/{quote(name, safe='')}?alt=media"
        blob = self.client.bucket(bucket_name).blob(name)
        credentials = self.client._credentials
        if getattr(credentials, "signer", None) is not None:
            return blob.generate_signed_url(version="v4", expiration=expires, method="GET")
        # Workload Identity credentials hold no private key: sign through the IAM signBlob API
        # by passing the service account and a fresh access token.
        from google.auth.transport.requests import Request

        if not credentials.valid:
            credentials.refresh(Request())
        return blob.generate_signed_url(
            version="v4",
            expiration=expires,
            method="GET",
            service_account_email=credentials.service_account_email,
            access_token=credentials.token,
        )


@dataclass(frozen=True)
class CallListing:
    """What one pass found: each call's report (by call prefix) and the recordings beside them."""

    reports: dict[str, ListedObject]
    recordings: list[ListedObject]
    do_not_call: list[ListedObject] = field(default_factory=list)  # requests written when heard

    def report_of(self, recording: ListedObject) -> ListedObject | None:
        return self.reports.get(recording.name.removesuffix(AUDIO_FILENAME))


def list_calls(
    list_objects: Callable[[str, str], Iterable[ListedObject]], since: datetime, now: datetime, max_call: timedelta
) -> CallListing:
    """Reports and recordings of every call that may have completed after ``since``: only the
    date prefixes that can hold them, and within each only names at or after the oldest call
    that may still have been running at ``since`` (call ids are uuid7: names sort by start)."""
    reports: dict[str, ListedObject] = {}
    recordings: list[ListedObject] = []
    do_not_call: list[ListedObject] = []
    # Through a few minutes past now: a report written just after midnight by a clock slightly
    # ahead of ours is in tomorrow's prefix.
    for prefix, offset in prefixes_to_list(since, now + SETTLE, max_call):
        for obj in list_objects(prefix, offset):
            parsed = parse_object_name(obj.name)
            if parsed is not None and parsed.name == REPORT_FILENAME:
                reports[obj.name.removesuffix(REPORT_FILENAME)] = obj
            elif parsed is not None and parsed.name == AUDIO_FILENAME:
                recordings.append(obj)
            elif parsed is not None and parsed.name == DO_NOT_CALL_FILENAME:
                do_not_call.append(obj)
    return CallListing(reports, recordings, do_not_call)


T = TypeVar("T")


@dataclass(frozen=True)
class ReportCursor:
    """The watermark of a listing consumer, and the keys it already handled at or after it."""

    since: datetime
    at_since: frozenset[str] = frozenset()

    def serialize(self) -> str:
        return json.dumps({"since": self.since.isoformat(), "at_since": sorted(self.at_since)})

    @classmethod
    def parse(cls, raw: str | None, now: datetime, initial_lookback: timedelta) -> ReportCursor:
        if not raw:
            return cls(since=now - initial_lookback)
        data = json.loads(raw)
        return cls(since=datetime.fromisoformat(data["since"]), at_since=frozenset(data.get("at_since", ())))

    def advance(
        self, watched: list[tuple[ListedObject, T]], now: datetime
    ) -> tuple[list[tuple[ListedObject, T]], ReportCursor]:
        """The watched objects not handled yet, and the cursor once they are."""
        new = [(obj, item) for obj, item in watched if obj.updated >= self.since and obj.key not in self.at_since]
        # Never past the newest new object: one finalized while this pass listed may be older.
        newest = max((obj.updated for obj, _ in new), default=now)
        since = max(self.since, min(newest, now - SETTLE))
        # Everything listed at or after the new watermark is handled: now or before.
        at_since = frozenset(obj.key for obj, _ in watched if obj.updated >= since)
        return new, ReportCursor(since=since, at_since=at_since)
