"""The comparison of an original call with its replay, and the run's summary."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from callcenter.ids import new_call_id
from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.paths import audio_path
from callcenter.replay import ReplayStatus
from callcenter.report import SessionReport, Speaker, Turn, TurnLatency
from orchestration.defs.replay.comparison import compare, failed, side_of, similarity, summarize

T0 = datetime(2026, 12, 1, 15, 0, tzinfo=UTC)


def report(
    *,
    outcome: CallOutcome = CallOutcome.ANSWERED,
    recording: bool = True,
    automated: bool = True,
    dnc: bool = False,
    agent: tuple[str, ...] = (
        "Hi, this is an automated assistant. This call may be recorded.",
        "Sure, Tuesday at ten.",
    ),
    caller: tuple[str, ...] = ("I would like to book an appointment.",),
    v2v: tuple[float, ...] = (800.0,),
) -> SessionReport:
    turns, t = [], 0.0
    for i, text in enumerate(agent):
        turns.append(Turn(speaker=Speaker.AGENT, text=text, start=t, end=t + 2))
        t += 3
        if i < len(caller):
            turns.append(Turn(speaker=Speaker.CALLER, text=caller[i], start=t, end=t + 2))
            t += 3
    call_id = new_call_id(T0)
    return SessionReport(
        call_id=call_id,
        recording_path=audio_path(call_id),
        room="call-x",
        direction=CallDirection.INBOUND,
        started_at=T0,
        answered_at=T0,
        ended_at=T0 + timedelta(seconds=t),
        outcome=outcome,
        recording_disclosed=recording,
        automated_agent_disclosed=automated,
        do_not_call_requested=dnc,
        turns=turns,
        latency=[TurnLatency(turn_index=2 * i + 1, voice_to_voice_ms=v) for i, v in enumerate(v2v)],
    )


def test_an_identical_replay_changes_nothing() -> None:
    original = report()
    row = compare(side_of(original), side_of(report()))
    assert row.status is ReplayStatus.REPLAYED
    assert not row.outcome_changed and not row.disclosure_regressions and not row.do_not_call_changed
    assert row.agent_similarity == 1.0 and row.caller_similarity == 1.0
    assert row.call_id == original.call_id


def test_a_dropped_disclosure_is_a_regression_and_a_new_one_is_not() -> None:
    row = compare(side_of(report()), side_of(report(recording=False)))
    assert row.disclosure_regressions == ["recording_disclosed"]
    row = compare(side_of(report(automated=False)), side_of(report()))
    assert row.disclosure_regressions == []


@pytest.mark.parametrize(("before", "after"), [(True, False), (False, True)])
def test_do_not_call_differs_either_way(before: bool, after: bool) -> None:
    assert compare(side_of(report(dnc=before)), side_of(report(dnc=after))).do_not_call_changed


def test_outcome_change_and_word_similarity() -> None:
    row = compare(
        side_of(report()),
        side_of(report(outcome=CallOutcome.TRANSFERRED, agent=("Hello there.", "Let me transfer you to a person."))),
    )
    assert row.outcome_changed
    assert row.agent_similarity is not None and row.agent_similarity < 0.3
    assert row.caller_similarity == 1.0


def test_similarity_is_none_when_nobody_spoke_and_zero_when_one_side_did() -> None:
    assert similarity([], []) is None
    assert similarity(["hello"], []) == 0.0


def test_stored_words_are_redacted_across_turns() -> None:
    card = "my card is four one one one one one one one one one one one one one one one"
    side = side_of(report(caller=(card,)))
    caller = " ".join(t.text for t in side.turns if t.speaker is Speaker.CALLER)
    assert caller == "my card is [REDACTED CARD]", caller


def test_summary_counts_and_latency_percentiles_over_replayed_calls_only() -> None:
    a = compare(side_of(report(v2v=(100.0, 200.0))), side_of(report(v2v=(300.0, 500.0), recording=False)))
    b = compare(side_of(report(v2v=(300.0,), dnc=True)), side_of(report(v2v=(900.0,), outcome=CallOutcome.DO_NOT_CALL)))
    c = failed(new_call_id(T0), "no agent joined", side_of(report(v2v=(10_000.0,))))
    s = summarize([a, b, c])
    assert (s.calls, s.replayed, s.failed) == (3, 2, 1)
    assert (s.outcomes_changed, s.disclosure_regressions, s.do_not_call_differences) == (1, 1, 1)
    # the failed call's 10 s is in neither side: before is 100, 200, 300; after 300, 500, 900
    assert (s.v2v_p50_ms_before, s.v2v_p95_ms_before) == (200.0, 290.0)
    assert (s.v2v_p50_ms_after, s.v2v_p95_ms_after) == (500.0, 860.0)


def test_an_empty_run_summarises_to_zeros() -> None:
    s = summarize([])
    assert (s.calls, s.replayed, s.v2v_p50_ms_before, s.agent_similarity_mean) == (0, 0, None, None)
