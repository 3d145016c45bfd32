"""A do-not-call request is written when it is heard, and dialing suppresses the number from
that object within one tick: before the call's report lands, and when it never does (an agent
that crashed, a report upload that failed). The words that count are one set of rules."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest

from callcenter.do_not_call import DoNotCallRequest, HeardBy, asks_not_to_be_called
from callcenter.ids import deterministic_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import do_not_call_path
from orchestration.defs.dialing.ledger import AttemptStatus, DialStore
from orchestration.defs.dialing.outcomes import sweep_inbound_do_not_call, sweep_outcomes
from orchestration.resources.storage import RecordingsBucket
from tests.dialing.conftest import write_report
from tests.dialing.test_report_paths import open_attempt

NOW = datetime(2026, 11, 26, 15, 0, tzinfo=UTC)
MAX_CALL = timedelta(hours=2)


def _write_request(bucket: RecordingsBucket, request: DoNotCallRequest) -> None:
    bucket.write_bytes(do_not_call_path(request.call_id), request.model_dump_json(), "application/json")


def test_an_outbound_request_suppresses_the_number_before_the_report_and_the_report_closes_once(
    store: DialStore, bucket: RecordingsBucket
) -> None:
    call_id = deterministic_call_id(NOW - timedelta(minutes=5), random.Random(11))
    open_attempt(store, call_id, NOW - timedelta(minutes=5))
    heard = DoNotCallRequest(
        call_id=call_id,
        direction=CallDirection.OUTBOUND,
        heard_at=NOW - timedelta(minutes=1),
        heard_by=HeardBy.AGENT_TOOL,
    )
    _write_request(bucket, heard)
    store.set_mark("inbound_do_not_call", NOW - timedelta(minutes=10))

    added = sweep_inbound_do_not_call(store, bucket.list_objects, bucket.read_if_present, NOW, MAX_CALL)
    assert added == ["+12125550001"]  # the attempt's number, from the ledger
    assert store.is_do_not_call("+12125550001")
    assert store.attempt_by_call(call_id).status is AttemptStatus.DISPATCHED  # the report closes it, not this

    write_report(bucket, call_id, CallOutcome.DO_NOT_CALL, NOW + timedelta(minutes=1), do_not_call=True)
    sweep = sweep_outcomes(store, bucket.read_if_present, NOW + timedelta(minutes=2), MAX_CALL)
    assert sweep.closed == {"do_not_call": 1}
    assert store.attempt_by_call(call_id).status is AttemptStatus.CLOSED


def test_an_inbound_request_of_an_agent_that_never_reported_is_not_lost(
    store: DialStore, bucket: RecordingsBucket
) -> None:
    call_id = deterministic_call_id(NOW - timedelta(minutes=3), random.Random(12))
    _write_request(
        bucket,
        DoNotCallRequest(
            call_id=call_id,
            direction=CallDirection.INBOUND,
            heard_at=NOW - timedelta(minutes=2),
            heard_by=HeardBy.CALLER_WORDS,
            from_number="(212) 555-0177",
        ),
    )
    store.set_mark("inbound_do_not_call", NOW - timedelta(minutes=10))
    added = sweep_inbound_do_not_call(store, bucket.list_objects, bucket.read_if_present, NOW, MAX_CALL)
    assert added == ["+12125550177"]  # as contact lists store it (E.164)
    assert store.is_do_not_call("+12125550177")


@pytest.mark.parametrize(
    "said",
    [
        "Stop calling me.",
        "Don't ring this number again.",
        "I never want to hear from you people again.",
        "Please take me off your list.",
        "Put me on your do not call list.",
        "Remove my number from your database.",
        "Don't you ever call me again!",
        "Lose my number.",
        "Quit bothering me.",
    ],
)
def test_a_request_in_any_words_is_heard(said: str) -> None:
    assert asks_not_to_be_called([said])


@pytest.mark.parametrize(
    "said",
    [
        "Can you call me back tomorrow at nine?",
        "Please don't hang up, I'm looking for my card.",
        "I never called you before, who is this?",
        "Yes, this is a good time to talk.",
    ],
)
def test_ordinary_words_are_no_request(said: str) -> None:
    assert not asks_not_to_be_called([said])
