"""An unreadable session report is recorded with its real cause: error type and location, never the input (issue 22, item 5)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from callcenter.redaction import RedactionPolicy
from orchestration.defs.postcall.calls import CallRef
from orchestration.defs.postcall.transcription import transcribe_call

pytestmark = pytest.mark.xdist_group("postcall")

STARTED = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
SECRET = "+15555550188"


class _NoSTT:
    def transcribe(self, samples):  # pragma: no cover - a report that fails never reaches STT
        raise AssertionError("no STT for an unreadable report")


def _failure(call, report: bytes) -> str:
    objects = {call.report_object: report}
    result = transcribe_call(CallRef(call.report_object, 1), objects.get, _NoSTT(), RedactionPolicy())
    assert result.report is None and result.failure
    return result.failure


def _report(call, **changes) -> dict:
    data = json.loads(call.report.model_dump_json())
    data["from_number"] = SECRET
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda d: json.dumps(d).encode()[:-40], "json_invalid"),
        (lambda d: json.dumps({**d, "schema_version": 99}).encode(), "literal_error at schema_version"),
        (lambda d: json.dumps({**d, "call_id": f"call-{SECRET}"}).encode(), "value_error at call_id"),
        (
            lambda d: json.dumps(
                {**d, "turns": [{"speaker": "agent", "text": SECRET, "start": -1, "end": 2}]}
            ).encode(),
            "greater_than_equal at turns.0.start",
        ),
    ],
    ids=["invalid_json", "schema_version_99", "bad_call_id", "negative_turn_time"],
)
def test_an_unreadable_report_names_the_error_type_and_location(render_demo_call, mutate, expected: str) -> None:
    call = render_demo_call("wrong_number", STARTED)
    failure = _failure(call, mutate(_report(call)))
    assert expected in failure, failure
    assert "validation error" not in failure  # pydantic's headline says nothing about the cause
    assert SECRET not in failure and "5555550188" not in failure  # never the input
