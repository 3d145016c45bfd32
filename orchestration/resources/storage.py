"""The recordings bucket: GCS in production, gcp-storage-emulator locally, same client."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property

import dagster as dg
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from pydantic import PrivateAttr


class RecordingsBucket(dg.ConfigurableResource):
    """Where Egress recordings and session reports land (``callcenter.paths`` layout)."""

    bucket_name: str
    project: str | None = None
    emulator_host: str | None = None  # e.g. http://127.0.0.1:9023; unset in production

    _client: storage.Client | None = PrivateAttr(default=None)

    @cached_property
    def client(self) -> storage.Client:
        if self.emulator_host:
            return storage.Client(
                project=self.project or "local",
                credentials=AnonymousCredentials(),
                client_options={"api_endpoint": self.emulator_host},
            )
        return storage.Client(project=self.project)

    @property
    def bucket(self) -> storage.Bucket:
        return self.client.bucket(self.bucket_name)

    def uri(self, object_name: str) -> str:
        return f"gs://{self.bucket_name}/{object_name}"

    def list_prefix(self, prefix: str, start_offset: str | None = None) -> list[storage.Blob]:
        """Objects under ``prefix`` (never the whole bucket), sorted by name."""
        blobs = self.client.list_blobs(self.bucket_name, prefix=prefix, start_offset=start_offset)
        return sorted(blobs, key=lambda b: b.name)

    def read_bytes(self, object_name: str) -> bytes:
        return self.bucket.blob(object_name).download_as_bytes()

    def read_uri(self, uri: str) -> bytes:
        """The object ``gs://<bucket>/<object>``, in this bucket or another one the same client
        may read (campaign contact lists, do-not-call registry files)."""
        bucket_name, _, object_name = uri.removeprefix("gs://").partition("/")
        if not uri.startswith("gs://") or not bucket_name or not object_name:
            raise ValueError(f"{uri!r} is not gs://<bucket>/<object>")
        return self.client.bucket(bucket_name).blob(object_name).download_as_bytes()

    def write_bytes(self, object_name: str, data: bytes, content_type: str) -> None:
        self.bucket.blob(object_name).upload_from_string(data, content_type=content_type)

    def playback_url(self, object_name: str, expires: timedelta = timedelta(minutes=15)) -> str:
        """A URL a browser can play: a V4 signed URL in production, the emulator's media URL locally."""
        if self.emulator_host:
            from urllib.parse import quote

            return f"{self.emulator_host}/download/storage/v1/b/{self.bucket_name}/o/{quote(object_name, safe='')}?alt=media"
        return self.bucket.blob(object_name).generate_signed_url(version="v4", expiration=expires, method="GET")
