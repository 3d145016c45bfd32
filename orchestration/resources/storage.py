"""The recordings bucket as a Dagster resource: configuration here, everything else in
``callcenter.bucket.Recordings`` (the one place the bucket is opened, listed and read)."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

import dagster as dg
from google.cloud import storage

from callcenter.bucket import ListedObject, Recordings


class RecordingsBucket(dg.ConfigurableResource):
    """Where Egress recordings and session reports land (``callcenter.paths`` layout)."""

    bucket_name: str
    project: str | None = None
    emulator_host: str | None = None  # e.g. http://127.0.0.1:9023; unset in production

    @cached_property
    def recordings(self) -> Recordings:
        return Recordings(self.bucket_name, self.project, self.emulator_host)

    @property
    def client(self) -> storage.Client:
        return self.recordings.client

    @property
    def bucket(self) -> storage.Bucket:
        return self.recordings.bucket

    def uri(self, object_name: str) -> str:
        return self.recordings.uri(object_name)

    def list_prefix(self, prefix: str, start_offset: str | None = None) -> list[storage.Blob]:
        """Objects under ``prefix`` (never the whole bucket), sorted by name."""
        return self.recordings.list_prefix(prefix, start_offset)

    def list_objects(self, prefix: str, offset: str) -> list[ListedObject]:
        return list(self.recordings.list_objects(prefix, offset))

    def read_bytes(self, object_name: str, max_bytes: int | None = None) -> bytes:
        return self.recordings.read_bytes(object_name, max_bytes=max_bytes)

    def read_if_present(self, object_name: str) -> bytes | None:
        return self.recordings.read_if_present(object_name)

    def read_uri(self, uri: str) -> bytes:
        return self.recordings.read_uri(uri)

    def write_bytes(self, object_name: str, data: bytes, content_type: str) -> None:
        self.recordings.write_bytes(object_name, data, content_type)

    def playback_url(self, object_name: str, expires: timedelta = timedelta(minutes=15)) -> str:
        return self.recordings.playback_url(object_name, expires)
