"""A replay's results: recorded calls played again through the agent with other settings, each
compared with its original. One home for the shape, shared by the writer (the Dagster replay
domain, ``orchestration/defs/replay``) and the reader (the call browser), which reads it without
Dagster.

    replay/<replay_id>/comparison.json    one object per replay run, written once and whole

Stored in the recordings bucket under its own prefix (never under ``recordings/``: post-call and
dialing's sweep list only that prefix), read and written through ``callcenter.bucket.Recordings``.
Only redacted words are stored (``callcenter.redaction``), never a phone number.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field

from callcenter.outcomes import CallOutcome
from callcenter.report import Speaker

if TYPE_CHECKING:
    from callcenter.bucket import Recordings

REPLAY_PREFIX = "replay"
COMPARISON_FILENAME = "comparison.json"
_REPLAY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


def is_replay_id(value: str) -> bool:
    return bool(_REPLAY_ID_RE.match(value))


def comparison_path(replay_id: str) -> str:
    if not is_replay_id(replay_id):
        raise ValueError(f"{replay_id!r} is no replay id (letters, digits, - and _, up to 64)")
    return f"{REPLAY_PREFIX}/{replay_id}/{COMPARISON_FILENAME}"


class ReplaySettings(BaseModel):
    """What the replay changed: only the settings given (None: as the agent is configured)."""

    model_config = ConfigDict(extra="forbid")

    persona: str | None = None
    personas_dir: str | None = None
    llm_model: str | None = None
    llm_base_url: str | None = None
    tts_model: str | None = None
    tts_voice: str | None = None
    vad_min_silence_s: float | None = None

    def changed(self) -> dict[str, str | float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class ReplayedTurn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    speaker: Speaker
    text: str  # redacted


class CallSide(BaseModel):
    """One run of a call, the original or the replay: facts, per-turn latency, redacted words."""

    model_config = ConfigDict(extra="forbid")

    call_id: str
    persona: str | None = None
    outcome: CallOutcome
    recording_disclosed: bool
    automated_agent_disclosed: bool
    do_not_call_requested: bool
    voice_to_voice_ms: list[float] = Field(default_factory=list, description="per agent reply, in order")
    turns: list[ReplayedTurn] = Field(default_factory=list)
    recording_uri: str | None = Field(None, description="gs:// of the run's recording (its first segment)")


class ReplayStatus(StrEnum):
    REPLAYED = "replayed"
    FAILED = "failed"
    SKIPPED = "skipped"  # nothing to play: never answered, or the caller said nothing


class CallComparison(BaseModel):
    """One recorded call and its replay. A failed replay keeps its reason, never drops the call."""

    model_config = ConfigDict(extra="forbid")

    call_id: str
    status: ReplayStatus
    reason: str | None = None
    original: CallSide | None = None
    replay: CallSide | None = None
    outcome_changed: bool = False
    disclosure_regressions: list[str] = Field(
        default_factory=list, description="disclosures the original made and the replay did not"
    )
    do_not_call_changed: bool = False
    agent_similarity: float | None = Field(None, description="0..1, the agent's words, original vs replay")
    caller_similarity: float | None = Field(
        None,
        description="0..1, the caller's words as each run heard them: low means the replay was not heard as recorded",
    )


class ReplaySummary(BaseModel):
    model_config = ConfigDict(extra="forbid")

    calls: int
    replayed: int
    failed: int
    skipped: int = 0
    outcomes_changed: int
    disclosure_regressions: int
    do_not_call_differences: int
    v2v_p50_ms_before: float | None = None
    v2v_p95_ms_before: float | None = None
    v2v_p50_ms_after: float | None = None
    v2v_p95_ms_after: float | None = None
    agent_similarity_mean: float | None = None


class ReplayResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    replay_id: str
    created_at: datetime
    selection: str = Field(description="what was replayed, in words: a day range or a count of chosen calls")
    settings: ReplaySettings
    summary: ReplaySummary
    rows: list[CallComparison]


def write_result(recordings: Recordings, result: ReplayResult) -> str:
    """One object, uploaded whole: a reader sees the old one, the new one, or none."""
    path = comparison_path(result.replay_id)
    recordings.write_bytes(path, result.model_dump_json(indent=1), content_type="application/json")
    return path


def read_result(recordings: Recordings, replay_id: str) -> ReplayResult | None:
    raw = recordings.read_if_present(comparison_path(replay_id))
    return None if raw is None else ReplayResult.model_validate_json(raw)


def list_replay_ids(recordings: Recordings) -> list[str]:
    """Every stored replay, newest first (Dagster run ids do not sort by time: by object time)."""
    blobs = [b for b in recordings.list_prefix(REPLAY_PREFIX + "/") if b.name.endswith("/" + COMPARISON_FILENAME)]
    blobs.sort(key=lambda b: b.updated, reverse=True)
    return [b.name.split("/")[1] for b in blobs]
