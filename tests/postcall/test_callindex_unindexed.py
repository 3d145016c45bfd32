"""Calls not in the index yet (pending, unreadable report, failed): the index keeps them, with the
reason, until the call is indexed; both engines (issue 22, items 3 and 5)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import psycopg
import pytest
from pydantic import ValidationError

from callcenter.ids import deterministic_call_id
from callindex import CallIndex, UnindexedCall, UnindexedState, open_call_index
from tests.postcall.conftest import unit

pytestmark = pytest.mark.xdist_group("postcall")

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PENDING, UNREADABLE = UnindexedState.PENDING, UnindexedState.UNREADABLE


def row(
    call_id: str, state: UnindexedState, *, generation: int | None = 3, minutes: int = 0, reason: str = ""
) -> UnindexedCall:
    return UnindexedCall(
        call_id=call_id,
        day=T0.date(),
        state=state,
        reason=reason or ("requested, run failed" if state is PENDING else "json_invalid"),
        since=T0 + timedelta(minutes=minutes),
        generation=generation,
    )


def states(index: CallIndex) -> dict[str, tuple[str, str]]:
    return {u.call_id: (u.state.value, u.reason) for u in index.list_unindexed().items}


def test_calls_not_indexed_are_listed_longest_waiting_first_until_indexed(index: CallIndex, record_factory) -> None:
    waiting = record_factory(T0, generation=3)
    broken_id = deterministic_call_id(T0 + timedelta(minutes=1), random.Random(1))
    assert index.mark_unindexed([row(broken_id, UNREADABLE, minutes=5, reason="literal_error at schema_version")]) == 1
    assert index.mark_unindexed([row(waiting.call_id, PENDING, minutes=1)]) == 1

    page = index.list_unindexed()
    assert [u.call_id for u in page.items] == [waiting.call_id, broken_id] and page.total == 2
    assert page.items[1].reason == "literal_error at schema_version" and page.items[1].day == T0.date()
    assert page.items[1].since == T0 + timedelta(minutes=5)
    assert [u.call_id for u in index.list_unindexed(UNREADABLE).items] == [broken_id]
    assert index.list_unindexed(limit=1, offset=1).items[0].call_id == broken_id
    assert index.count_unindexed() == {PENDING: 1, UNREADABLE: 1, UnindexedState.FAILED: 0}

    index.upsert(waiting, unit(1))  # its batch ran again and indexed it: no longer pending
    assert states(index) == {broken_id: ("unreadable", "literal_error at schema_version")}
    assert index.count_unindexed()[PENDING] == 0


def test_pending_never_hides_what_post_call_found_and_keeps_its_first_since(index: CallIndex) -> None:
    rng = random.Random(2)
    broken, late = (deterministic_call_id(T0, rng) for _ in range(2))
    index.mark_unindexed([row(broken, UNREADABLE, generation=3)])
    # A retried batch's first, failed attempt asked for the same report: still unreadable.
    assert index.mark_unindexed([row(broken, PENDING, generation=3)]) == 0
    assert states(index)[broken][0] == "unreadable"
    # News of an older generation never replaces a newer one's.
    index.mark_unindexed([row(broken, PENDING, generation=2)])
    assert states(index)[broken][0] == "unreadable"
    # The report was rewritten and the new generation requested: pending again.
    index.mark_unindexed([row(broken, PENDING, generation=4)])
    assert states(index)[broken][0] == "pending"

    index.mark_unindexed([row(late, PENDING, minutes=0)])
    index.mark_unindexed([row(late, PENDING, minutes=10)])  # the check sees it again ten minutes on
    (stored,) = [u for u in index.list_unindexed().items if u.call_id == late]
    assert stored.since == T0  # how long it has waited, not when it was last seen


def test_a_call_indexed_from_that_generation_is_not_marked(index: CallIndex, record_factory) -> None:
    rec = record_factory(T0, generation=3)
    index.upsert(rec, unit(1))
    assert index.mark_unindexed([row(rec.call_id, PENDING, generation=3)]) == 0
    assert index.list_unindexed().items == []
    # A newer report that cannot be read: listed, while the index still shows the older one.
    assert index.mark_unindexed([row(rec.call_id, UNREADABLE, generation=4)]) == 1
    assert states(index) == {rec.call_id: ("unreadable", "json_invalid")}
    assert index.get(rec.call_id) is not None


def test_a_failed_batch_keeps_the_calls_not_indexed(index: CallIndex, record_factory) -> None:
    good = record_factory(T0, generation=3)
    index.mark_unindexed([row(good.call_id, PENDING)])
    with pytest.raises(ValueError, match="384 dimensions"):
        index.upsert_many([(good, unit(1)), (record_factory(T0 + timedelta(minutes=1)), [0.0] * 3)])
    assert states(index) == {good.call_id: ("pending", "requested, run failed")}  # nothing half-done


def test_only_a_call_id_and_a_short_reason_are_accepted() -> None:
    with pytest.raises(ValidationError, match="not a call id"):
        row("+15555550188", PENDING)
    with pytest.raises(ValidationError, match="at most 300"):
        row(deterministic_call_id(T0, random.Random(3)), UNREADABLE, reason="x" * 301)


def test_a_reader_sees_them_and_a_database_without_the_table_has_none(postgres_dsn, record_factory) -> None:
    with open_call_index(postgres_dsn) as writer:
        writer.mark_unindexed([row(deterministic_call_id(T0, random.Random(4)), UNREADABLE)])
    with open_call_index(postgres_dsn, read_only=True) as reader:
        assert reader.count_unindexed()[UNREADABLE] >= 1
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS before_unindexed")
        conn.execute("CREATE DATABASE before_unindexed")
    fresh = urlsplit(postgres_dsn)._replace(path="/before_unindexed").geturl()
    assert fresh.startswith("postgresql://")
    with psycopg.connect(fresh, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
        conn.execute("CREATE TABLE calls (call_id text PRIMARY KEY, record jsonb)")  # an index from before
    with open_call_index(fresh, read_only=True) as reader:  # the browser, deployed before the pipeline
        assert reader.list_unindexed().items == [] and sum(reader.count_unindexed().values()) == 0
