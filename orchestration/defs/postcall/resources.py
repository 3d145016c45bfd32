"""The postcall domain's resources other than STT and the LLM (speech.py, analysis.py)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from callcenter.redaction import RedactionPattern, RedactionPolicy
from callindex import CallIndex, open_call_index
from callindex.embeddings import CallEmbedder

INDEX_FILENAME = "call_index.db"


class CallIndexResource(dg.ConfigurableResource):
    """Where indexed calls go: ``url`` (postgresql://... in production), else a SQLite file under ``data_dir``."""

    url: str = Field("", description="postgresql://... or sqlite:///path; empty = <data_dir>/call_index.db")
    data_dir: str = Field("", description="local data directory (CALLCENTER_DATA_DIR)")

    def resolved_url(self) -> str:
        if self.url:
            return self.url
        if not self.data_dir:
            raise dg.Failure(
                description="call index is not configured: set CALLCENTER_DATA_DIR (local) "
                "or CALLCENTER_CALL_INDEX_DSN (gke, postgresql://...)"
            )
        return f"sqlite://{Path(self.data_dir).resolve() / INDEX_FILENAME}"

    def open(self) -> CallIndex:
        return open_call_index(self.resolved_url())


class CallEmbeddings(dg.ConfigurableResource):
    """all-MiniLM-L6-v2 on CPU; the model loads once per process."""

    model_path: str = Field("", description="sentence-transformers model dir; empty = the bundled all-MiniLM-L6-v2")
    batch_size: int = 32

    _embedder: CallEmbedder | None = PrivateAttr(default=None)

    def embedder(self) -> CallEmbedder:
        if self._embedder is None:
            self._embedder = _shared_embedder(self.model_path, self.batch_size)
        return self._embedder


_EMBEDDERS: dict[tuple[str, int], CallEmbedder] = {}


def _shared_embedder(model_path: str, batch_size: int) -> CallEmbedder:
    key = (model_path, batch_size)
    if key not in _EMBEDDERS:
        _EMBEDDERS[key] = CallEmbedder(model_path or None, batch_size=batch_size)
    return _EMBEDDERS[key]


class RedactionSettings(dg.ConfigurableResource):
    """Redaction policy. Extra patterns: label -> regex. Raw transcripts are kept only if allowed."""

    extra_patterns: dict[str, str] = Field(default_factory=dict)
    redact_long_numbers: bool = True
    keep_raw_transcript: bool = Field(
        False,
        description="write the unredacted STT output next to the recording (same access as the audio itself)",
    )

    def policy(self) -> RedactionPolicy:
        return RedactionPolicy(
            long_numbers=self.redact_long_numbers,
            patterns=tuple(RedactionPattern(label, regex) for label, regex in self.extra_patterns.items()),
        )
