"""The recordings bucket's lifecycle rule deletes what must not stay: unredacted transcripts
(written only with keep_raw_transcript) and Dagster's step outputs, and nothing a call needs."""

from __future__ import annotations

import json
from pathlib import Path

from callcenter.ids import new_call_id
from callcenter.paths import (
    RAW_SUFFIX,
    STT_TRANSCRIPT_RAW_FILENAME,
    audio_path,
    call_prefix,
    do_not_call_path,
    live_transcript_raw_path,
    report_path,
)
from orchestration.defs.postcall import IO_PREFIX

REPO = Path(__file__).resolve().parents[2]
LIFECYCLE = REPO / "manifests" / "gcs" / "recordings-lifecycle.json"


def _deleted_after(name: str) -> int | None:
    """Days after which a rule deletes the object ``name`` (GCS lifecycle semantics), else None."""
    ages = []
    for rule in json.loads(LIFECYCLE.read_text())["rule"]:
        if rule["action"]["type"] != "Delete":
            continue
        cond = rule["condition"]
        if "matchesSuffix" in cond and not any(name.endswith(s) for s in cond["matchesSuffix"]):
            continue
        if "matchesPrefix" in cond and not any(name.startswith(p) for p in cond["matchesPrefix"]):
            continue
        ages.append(cond["age"])
    return min(ages, default=None)


def test_raw_transcripts_and_step_outputs_are_deleted_within_30_days() -> None:
    call_id = new_call_id()
    for name in (live_transcript_raw_path(call_id), call_prefix(call_id) + STT_TRANSCRIPT_RAW_FILENAME):
        assert name.endswith(RAW_SUFFIX)
        assert (age := _deleted_after(name)) is not None and age <= 30, name
    assert _deleted_after(f"{IO_PREFIX}/call_transcripts/2026-11-24") == 30


def test_what_a_call_needs_is_never_deleted_by_it() -> None:
    call_id = new_call_id()
    for name in (audio_path(call_id), report_path(call_id), do_not_call_path(call_id)):
        assert _deleted_after(name) is None, name


def test_the_docs_apply_this_file() -> None:
    assert "--lifecycle-file=manifests/gcs/recordings-lifecycle.json" in (REPO / "docs" / "secrets.md").read_text()
