"""The call index contract, run against both engines: embedded SQLite and PostgreSQL+pgvector."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from callcenter.outcomes import CallOutcome
from callcenter.record import Sentiment
from callindex import CallFilter, CallIndex, SortField, open_call_index
from callindex.query import fts5_match, query_terms
from tests.postcall.conftest import unit

pytestmark = pytest.mark.xdist_group("postcall")

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_upsert_replaces_rather_than_duplicates(index: CallIndex, record_factory) -> None:
    rec = record_factory(T0, text="first version of the call")
    index.upsert(rec, unit(1))
    index.upsert(rec.model_copy(update={"source_generation": 2, "transcript": rec.transcript[:1]}), unit(2))
    assert index.count() == 1
    stored = index.get(rec.call_id)
    assert stored is not None and stored.source_generation == 2 and len(stored.transcript) == 1
    # The replaced text is gone from full-text search, and the old vector from vector search.
    assert index.search_text("first version") == []
    assert index.search_vector(unit(2), limit=1)[0].record.call_id == rec.call_id


def test_an_older_report_generation_never_replaces_a_newer_one(index: CallIndex, record_factory) -> None:
    """The run of a report's first generation may finish (or be retried) after the run of its
    rewrite: the newer row stays, text, vector and all."""
    rec = record_factory(T0, text="the rewritten report")
    index.upsert(rec.model_copy(update={"source_generation": 2}), unit(2))
    index.upsert(rec.model_copy(update={"source_generation": 1, "transcript": rec.transcript[:1]}), unit(1))
    stored = index.get(rec.call_id)
    assert stored is not None and stored.source_generation == 2 and stored.transcript == rec.transcript
    assert [h.record.call_id for h in index.search_text("rewritten")] == [rec.call_id]
    assert index.search_vector(unit(2), limit=1)[0].record.source_generation == 2


def test_failed_batch_leaves_nothing_behind(index: CallIndex, record_factory) -> None:
    good = record_factory(T0)
    with pytest.raises(ValueError, match="384 dimensions"):
        index.upsert_many([(good, unit(1)), (record_factory(T0 + timedelta(minutes=1)), [0.0] * 3)])
    assert index.count() == 0 and index.get(good.call_id) is None


def test_filters_sort_and_pagination(index: CallIndex, record_factory) -> None:
    recs = []
    for i in range(12):
        rec = record_factory(
            T0 + timedelta(minutes=i),
            campaign_id="recall" if i % 2 else "winback",
            outcome=CallOutcome.VOICEMAIL if i % 3 == 0 else CallOutcome.ANSWERED,
            sentiment=Sentiment.NEGATIVE if i % 4 == 0 else Sentiment.POSITIVE,
            follow_up=i % 5 == 0,
        )
        recs.append(rec)
    index.upsert_many((r, unit(i)) for i, r in enumerate(recs))
    assert index.count(CallFilter(campaign_id="recall")) == 6
    assert index.count(CallFilter(outcomes=(CallOutcome.VOICEMAIL,))) == 4
    assert index.count(CallFilter(campaign_id="recall", outcomes=(CallOutcome.VOICEMAIL,))) == 2
    assert index.count(CallFilter(sentiment=Sentiment.NEGATIVE)) == 3
    assert index.count(CallFilter(follow_up_needed=True)) == 3
    window = CallFilter(started_from=T0 + timedelta(minutes=3), started_to=T0 + timedelta(minutes=7))
    assert index.count(window) == 4  # [from, to)

    page1 = index.list_calls(sort=SortField.STARTED_AT, descending=True, limit=5, offset=0)
    page3 = index.list_calls(sort=SortField.STARTED_AT, descending=True, limit=5, offset=10)
    assert page1.total == 12 and [r.call_id for r in page1.items] == [r.call_id for r in recs[::-1][:5]]
    assert [r.call_id for r in page3.items] == [recs[1].call_id, recs[0].call_id]
    oldest_first = index.list_calls(CallFilter(campaign_id="winback"), descending=False, limit=2)
    assert [r.call_id for r in oldest_first.items] == [recs[0].call_id, recs[2].call_id]
    with pytest.raises(ValueError, match="limit"):
        index.list_calls(limit=0)


def test_filtered_full_text_search(index: CallIndex, record_factory) -> None:
    refund = record_factory(T0, campaign_id="billing", text="I was charged twice and I want a refund")
    refund_other = record_factory(T0 + timedelta(minutes=1), campaign_id="recall", text="refund my deposit please")
    other = record_factory(T0 + timedelta(minutes=2), campaign_id="billing", text="book a cleaning for Thursday")
    index.upsert_many([(refund, unit(1)), (refund_other, unit(2)), (other, unit(3))])
    hits = index.search_text("refund", CallFilter(campaign_id="billing"))
    assert [h.record.call_id for h in hits] == [refund.call_id]
    assert "[refund]" in (hits[0].snippet or "")
    assert {h.record.call_id for h in index.search_text("refunds")} == {refund.call_id, refund_other.call_id}
    assert [h.record.call_id for h in index.search_text('"charged twice"')] == [refund.call_id]
    assert index.search_text("refund thursday") == []  # words are ANDed
    # Search syntax in user input is treated as words, never as an FTS/tsquery expression.
    assert [h.record.call_id for h in index.search_text("cleaning) OR (NEAR*")] == []
    with pytest.raises(ValueError, match="no words"):
        index.search_text("  ?! ")


def test_filtered_vector_search_ranks_by_cosine(index: CallIndex, record_factory) -> None:
    recs = [record_factory(T0 + timedelta(minutes=i), campaign_id="a" if i < 20 else "b") for i in range(40)]
    vectors = [unit(i) for i in range(40)]
    index.upsert_many(zip(recs, vectors, strict=True))
    query = np.asarray(vectors[25]) + 0.3 * np.asarray(vectors[30])
    hits = index.search_vector(query.tolist(), limit=3)
    assert [h.record.call_id for h in hits[:2]] == [recs[25].call_id, recs[30].call_id]
    assert hits[0].score > hits[1].score > hits[2].score
    filtered = index.search_vector(query.tolist(), CallFilter(campaign_id="a"), limit=5)
    assert len(filtered) == 5 and all(h.record.campaign_id == "a" for h in filtered)


def test_delete(index: CallIndex, record_factory) -> None:
    rec = record_factory(T0, text="delete me please")
    index.upsert(rec, unit(1))
    assert index.delete(rec.call_id) is True
    assert index.get(rec.call_id) is None and index.search_text("delete") == [] and index.search_vector(unit(1)) == []
    assert index.delete(rec.call_id) is False


@pytest.mark.parametrize(
    ("query", "terms"),
    [
        ("refund", ["refund"]),
        ('"charged twice" card', ["charged twice", "card"]),
        ("NEAR(a b)", ["NEAR a", "b"]),
        ("e-mail", ["e mail"]),
    ],
)
def test_query_terms(query: str, terms: list[str]) -> None:
    assert query_terms(query) == terms
    assert fts5_match(query).count('"') == 2 * len(terms)


def test_sqlite_index_is_readable_while_another_connection_writes(tmp_path, record_factory) -> None:
    """The browser reads from its own process while a Dagster run writes: WAL keeps both going."""
    path = f"sqlite://{tmp_path / 'calls.db'}"
    writer, reader = open_call_index(path), open_call_index(path)
    try:
        writer.upsert(record_factory(T0), unit(1))
        assert reader.count() == 1
        writer.upsert(record_factory(T0 + timedelta(minutes=1)), unit(2))
        assert reader.count() == 2
    finally:
        writer.close()
        reader.close()


def test_filtered_search_matches_the_filters_exactly(index: CallIndex, record_factory) -> None:
    """Filters pushed into the full-text match (SQLite's tags) agree with plain filtering."""
    campaigns = ["recall", "winback", None]
    outcomes = [CallOutcome.ANSWERED, CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER]
    recs = [
        record_factory(
            datetime(2026, 10, 28, tzinfo=UTC) + timedelta(hours=9 * i),
            campaign_id=campaigns[i % 3],
            outcome=outcomes[(i // 3) % 3],
            text="please send me the invoice" if i % 2 else "invoice question",
        )
        for i in range(30)
    ]
    index.upsert_many((r, unit(i)) for i, r in enumerate(recs))
    cases = [
        CallFilter(campaign_id="recall"),
        CallFilter(outcomes=(CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER)),
        # Across a month boundary, with time-of-day bounds the day tokens alone would not honour.
        CallFilter(
            started_from=datetime(2026, 10, 30, 12, tzinfo=UTC), started_to=datetime(2026, 11, 2, 6, tzinfo=UTC)
        ),
        CallFilter(campaign_id="winback", started_from=datetime(2026, 10, 29, tzinfo=UTC)),
        CallFilter(
            campaign_id="recall",
            started_from=datetime(2026, 10, 29, 5, tzinfo=UTC),
            started_to=datetime(2026, 11, 3, tzinfo=UTC),
        ),
    ]
    for filters in cases:
        expected = {
            r.call_id
            for r in recs
            if (filters.campaign_id is None or r.campaign_id == filters.campaign_id)
            and (not filters.outcomes or r.outcome in filters.outcomes)
            and (filters.started_from is None or r.started_at >= filters.started_from)
            and (filters.started_to is None or r.started_at < filters.started_to)
        }
        assert expected, filters
        assert {h.record.call_id for h in index.search_text("invoice", filters, limit=100)} == expected, filters
        assert {h.record.call_id for h in index.search_vector(unit(0), filters, limit=100)} == expected, filters
        assert index.count(filters) == len(expected)


def _varied(record_factory) -> list:
    """12 calls over personas, contacts, durations and latencies (some unmeasured, some unanalysed)."""
    from callcenter.record import LatencySummary

    sentiments = [Sentiment.POSITIVE, Sentiment.NEGATIVE, Sentiment.MIXED, Sentiment.NEUTRAL]
    recs = []
    for i in range(12):
        rec = record_factory(T0 + timedelta(minutes=i), sentiment=sentiments[i % 4], text=f"invoice call {i}")
        p50 = None if i % 5 == 0 else 400.0 + 50 * i
        rec = rec.model_copy(
            update={
                "persona": ["Recall", "billing", None][i % 3],
                "contact_id": f"contact-{i % 4}",
                "duration_s": float(10 * i),
                "latency": LatencySummary(turns_measured=0 if p50 is None else 3, voice_to_voice_p50_ms=p50),
            }
        )
        if i == 11:
            rec = rec.model_copy(update={"analysis": None})
        recs.append(rec)
    return recs


@pytest.mark.parametrize("exact_scan_max", [50_000, 0], ids=["exact", "post-filtered"])
def test_persona_contact_duration_and_latency_filters(
    index: CallIndex, record_factory, monkeypatch, exact_scan_max
) -> None:
    # SQLite's vector search ranks a small filtered set exactly, a large one from the binary scan's candidates.
    monkeypatch.setattr("callindex.sqlite.EXACT_SCAN_MAX", exact_scan_max)
    recs = _varied(record_factory)
    index.upsert_many((r, unit(i)) for i, r in enumerate(recs))
    p50 = lambda r: r.latency.voice_to_voice_p50_ms  # noqa: E731
    cases = [
        (CallFilter(persona="recall"), lambda r: (r.persona or "").casefold() == "recall"),
        (CallFilter(persona="BILLING", contact_id="contact-1"), lambda r: r.persona == "billing" and r.contact_id == "contact-1"),
        (CallFilter(min_duration_s=30, max_duration_s=70), lambda r: 30 <= r.duration_s <= 70),
        (CallFilter(min_latency_p50_ms=600), lambda r: p50(r) is not None and p50(r) >= 600),
        (CallFilter(max_latency_p50_ms=600), lambda r: p50(r) is not None and p50(r) <= 600),
        (CallFilter(contact_id="contact-2", max_duration_s=60), lambda r: r.contact_id == "contact-2" and r.duration_s <= 60),
    ]  # fmt: skip
    for filters, pred in cases:
        expected = {r.call_id for r in recs if pred(r)}
        assert expected and len(expected) < len(recs), filters
        assert {r.call_id for r in index.list_calls(filters, limit=100).items} == expected, filters
        assert index.count(filters) == len(expected), filters
        assert {h.record.call_id for h in index.search_text("invoice", filters, limit=100)} == expected, filters
        assert {h.record.call_id for h in index.search_vector(unit(3), filters, limit=100)} == expected, filters


@pytest.mark.parametrize("descending", [True, False])
def test_sort_by_latency_and_sentiment_puts_unknowns_last(index: CallIndex, record_factory, descending) -> None:
    from callindex.api import SENTIMENT_RANK

    recs = _varied(record_factory)
    index.upsert_many((r, unit(i)) for i, r in enumerate(recs))
    by_latency = index.list_calls(sort=SortField.LATENCY, descending=descending, limit=100).items
    measured = [r.latency.voice_to_voice_p50_ms for r in by_latency if r.latency.voice_to_voice_p50_ms is not None]
    assert measured == sorted(measured, reverse=descending) and len(measured) == 9
    assert all(r.latency.voice_to_voice_p50_ms is None for r in by_latency[len(measured) :])
    by_sentiment = index.list_calls(sort=SortField.SENTIMENT, descending=descending, limit=100).items
    ranks = [SENTIMENT_RANK[r.sentiment] for r in by_sentiment[:-1]]
    assert ranks == sorted(ranks, reverse=descending) and by_sentiment[-1].analysis is None


def test_count_limit_caps_the_total(index: CallIndex, record_factory) -> None:
    recs = [record_factory(T0 + timedelta(minutes=i)) for i in range(7)]
    index.upsert_many((r, unit(i)) for i, r in enumerate(recs))
    capped = index.list_calls(limit=2, count_limit=5)
    assert (capped.total, capped.total_exact, len(capped.items)) == (5, False, 2)
    assert (index.list_calls(limit=2, count_limit=7).total, index.list_calls(limit=2, count_limit=7).total_exact) == (
        7,
        True,
    )
    exact = index.list_calls(limit=2)
    assert (exact.total, exact.total_exact) == (7, True)
    with pytest.raises(ValueError, match="count_limit"):
        index.list_calls(count_limit=-1)


def test_get_embedding_returns_the_stored_vector(index: CallIndex, record_factory) -> None:
    rec = record_factory(T0)
    index.upsert(rec, unit(7))
    stored = index.get_embedding(rec.call_id)
    assert stored is not None and np.allclose(stored, unit(7), atol=1e-6)
    assert index.get_embedding("call-00000000-0000-7000-8000-000000000000") is None
    assert index.search_vector(stored, limit=1)[0].record.call_id == rec.call_id


def test_sqlite_file_from_before_the_added_columns_is_migrated(tmp_path, record_factory) -> None:
    """An index written by the first release gains the columns, filled from each stored record."""
    import apsw

    path = tmp_path / "old.db"
    recs = _varied(record_factory)
    with open_call_index(str(path)) as idx:
        idx.upsert_many((r, unit(i)) for i, r in enumerate(recs))
    conn = apsw.Connection(str(path))
    for name in ("calls_persona_started", "calls_contact_started", "calls_latency", "calls_sentiment_rank"):
        conn.execute(f"DROP INDEX {name}")
    for column in ("persona_key", "contact_id", "latency_p50_ms", "sentiment_rank"):
        conn.execute(f"ALTER TABLE calls DROP COLUMN {column}")
    conn.close()
    with open_call_index(str(path)) as idx:
        assert idx.count(CallFilter(persona="Recall")) == 4
        assert idx.count(CallFilter(contact_id="contact-3", min_latency_p50_ms=600)) == 2
        ordered = idx.list_calls(sort=SortField.SENTIMENT, descending=False, limit=100).items
        assert ordered[0].sentiment == Sentiment.NEGATIVE and ordered[-1].analysis is None


def test_postgres_table_from_before_the_added_columns_is_migrated(postgres_dsn, record_factory) -> None:
    recs = _varied(record_factory)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE calls")
    with open_call_index(postgres_dsn) as idx:
        idx.upsert_many((r, unit(i)) for i, r in enumerate(recs))
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        for column in ("persona_key", "contact_id", "latency_p50_ms", "sentiment_rank"):
            conn.execute(f"ALTER TABLE calls DROP COLUMN {column}")  # drops its index too
    with open_call_index(postgres_dsn) as idx:
        assert idx.count(CallFilter(persona="Recall")) == 4
        assert idx.count(CallFilter(contact_id="contact-3", min_latency_p50_ms=600)) == 2
        ordered = idx.list_calls(sort=SortField.SENTIMENT, descending=False, limit=100).items
        assert ordered[0].sentiment == Sentiment.NEGATIVE and ordered[-1].analysis is None
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE calls")


@pytest.mark.parametrize("sort", list(SortField))
@pytest.mark.parametrize("descending", [True, False])
def test_postgres_list_order_is_served_by_an_index(postgres_dsn, sort, descending) -> None:
    """Every list sort reads an index in order (a NULLS clause that no index matches sorts the table)."""
    from callindex.postgres import PostgresCallIndex, _order_by

    PostgresCallIndex(postgres_dsn).close()  # the schema
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_sort = off")  # only a full sort remains costly; incremental sorts are fine
        plan = "\n".join(
            r[0]
            for r in conn.execute(f"EXPLAIN SELECT record FROM calls ORDER BY {_order_by(sort, descending)} LIMIT 50")
        )
    assert "Index" in plan and "disabled" not in plan.lower() and "  Sort  " not in plan.replace("->", " "), plan


# -- SQLite's in-process binary-code cache (callindex/code_cache.py) ---------------------------

_OUTCOME_CYCLE = [CallOutcome.ANSWERED, CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER]


def _clustered(n: int, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 6 intent centres (as real call embeddings cluster), and the centres."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(6, 384))
    vectors = centres[rng.integers(0, 6, size=n)] + rng.normal(size=(n, 384)) * 0.9
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors.astype(np.float32), centres


def _brute_force(recs, vectors: np.ndarray, query: np.ndarray, keep, limit: int, hamming_k: int = 0) -> list[str]:
    """The exact cosine ranking over every call passing ``keep``.

    ``hamming_k``: only over the ``hamming_k`` calls whose sign bits differ least from the
    query's (ties to the earliest written), i.e. what binary candidates + exact re-rank promise.
    """
    passing = [i for i in range(len(recs)) if keep(recs[i])]
    if hamming_k:
        differing = ((vectors > 0) != (query > 0)).sum(axis=1)
        passing = sorted(passing, key=lambda i: (differing[i], i))[:hamming_k]
    sims = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    order = sorted(passing, key=lambda i: -sims[i])
    return [recs[i].call_id for i in order[:limit]]


@pytest.mark.parametrize("exact_rerank_max", [512, 0], ids=["small-sets-exact", "hamming-candidates"])
def test_sqlite_vector_search_equals_brute_force(tmp_path, record_factory, monkeypatch, exact_rerank_max) -> None:
    """Binary candidates + exact re-rank return the exact ranking, unfiltered and filtered.

    With ``EXACT_RERANK_MAX = 0`` every query goes through the Hamming top-k of the code cache,
    and the result must equal the exact ranking of exactly those candidates.
    """
    import callindex.sqlite

    monkeypatch.setattr(callindex.sqlite, "EXACT_RERANK_MAX", exact_rerank_max)
    n = 240
    vectors, centres = _clustered(n)
    recs = [
        record_factory(
            T0 + timedelta(hours=7 * i),
            campaign_id=["recall", "winback", None][i % 3],
            outcome=_OUTCOME_CYCLE[(i // 3) % 3],
        )
        for i in range(n)
    ]
    frm, to = T0 + timedelta(days=10), T0 + timedelta(days=50)
    cases = [
        (None, lambda r: True),
        (CallFilter(campaign_id="recall"), lambda r: r.campaign_id == "recall"),
        (
            CallFilter(outcomes=(CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER), started_from=frm, started_to=to),
            lambda r: r.outcome in (CallOutcome.VOICEMAIL, CallOutcome.NO_ANSWER) and frm <= r.started_at < to,
        ),
    ]
    with open_call_index(f"sqlite://{tmp_path / 'calls.db'}") as index:
        index.upsert_many(zip(recs, vectors.tolist(), strict=True))
        for c, centre in enumerate(centres):
            query = centre + np.random.default_rng(c).normal(size=384) * 0.3
            for filters, keep in cases:
                hits = index.search_vector(query.tolist(), filters, limit=5)
                hamming_k = 0 if exact_rerank_max else 5 * callindex.sqlite.RERANK_FACTOR
                expected = _brute_force(recs, vectors, query, keep, 5, hamming_k)
                assert [h.record.call_id for h in hits] == expected, (c, filters)
                assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_sqlite_code_cache_follows_another_connections_writes(tmp_path, record_factory, monkeypatch) -> None:
    """The browser's cache, built before a pipeline run writes, sees inserts, replacements and deletes."""
    import callindex.code_cache

    path = f"sqlite://{tmp_path / 'calls.db'}"
    writer, reader = open_call_index(path), open_call_index(path)
    try:
        recs = [record_factory(T0 + timedelta(minutes=i)) for i in range(30)]
        writer.upsert_many((r, unit(i)) for i, r in enumerate(recs))
        assert reader.search_vector(unit(3), limit=1)[0].record.call_id == recs[3].call_id  # cache built here

        new = record_factory(T0 + timedelta(hours=5))
        writer.upsert(new, unit(100))
        assert reader.search_vector(unit(100), limit=1)[0].record.call_id == new.call_id

        # Replaced: new vector and outcome. The old vector no longer finds it; the old outcome excludes it.
        writer.upsert(recs[5].model_copy(update={"outcome": CallOutcome.VOICEMAIL}), unit(200))
        assert reader.search_vector(unit(200), limit=1)[0].record.call_id == recs[5].call_id
        assert recs[5].call_id not in [h.record.call_id for h in reader.search_vector(unit(5), limit=3)]
        answered = CallFilter(outcomes=(CallOutcome.ANSWERED,))
        assert recs[5].call_id not in [h.record.call_id for h in reader.search_vector(unit(200), answered, limit=40)]

        writer.delete(recs[7].call_id)
        assert recs[7].call_id not in [h.record.call_id for h in reader.search_vector(unit(7), limit=40)]

        # The reader's own writes (data_version does not move for them) are seen too.
        mine = record_factory(T0 + timedelta(hours=6))
        reader.upsert(mine, unit(300))
        assert reader.search_vector(unit(300), limit=1)[0].record.call_id == mine.call_id

        writer.delete(mine.call_id)
        reused = record_factory(T0 + timedelta(hours=7))
        writer.upsert(reused, unit(301))  # SQLite hands out the deleted maximum rowid again
        hits = reader.search_vector(unit(301), limit=40)
        assert hits[0].record.call_id == reused.call_id and mine.call_id not in [h.record.call_id for h in hits]

        # A change log pruned past the reader's watermark makes it reload whole.
        monkeypatch.setattr(callindex.code_cache, "CHANGES_KEPT", 1)
        reloads: list[int] = []
        full_load = reader._codes._full_load
        monkeypatch.setattr(reader._codes, "_full_load", lambda conn: (reloads.append(1), full_load(conn)))
        writer.delete(recs[9].call_id)
        writer.upsert(recs[11].model_copy(update={"outcome": CallOutcome.VOICEMAIL}), unit(400))
        hits = reader.search_vector(unit(400), limit=40)
        assert hits[0].record.call_id == recs[11].call_id and hits[0].record.outcome is CallOutcome.VOICEMAIL
        assert recs[9].call_id not in [h.record.call_id for h in hits]
        assert len(hits) == 30  # 30 + new + reused - two deleted
        assert reloads == [1]

        # Even a stale cache never returns a deleted call: candidates are re-read from the rows.
        monkeypatch.setattr(type(reader._codes), "refresh", lambda self, conn: None)
        writer.delete(recs[13].call_id)
        assert recs[13].call_id not in [h.record.call_id for h in reader.search_vector(unit(13), limit=40)]
    finally:
        writer.close()
        reader.close()


def test_per_turn_latency_is_kept_and_rows_from_before_it_still_read(index: CallIndex, record_factory) -> None:
    """The call page's per-turn latency comes from the index; a row stored before the index kept
    it reads as none (the page shows the call's medians) on both engines, with no migration."""
    from callcenter.record import LatencySummary
    from callcenter.report import TurnLatency

    turns = [TurnLatency(turn_index=i, llm_ttft_ms=300.0 + i, voice_to_voice_ms=900.0 + i) for i in (1, 3)]
    rec = record_factory(T0).model_copy(
        update={"latency": LatencySummary(turns_measured=2, voice_to_voice_p50_ms=901.0, per_turn=turns)}
    )
    index.upsert(rec, unit(1))
    assert index.get(rec.call_id).latency.per_turn == turns
    from callindex.sqlite import SqliteCallIndex

    if isinstance(index, SqliteCallIndex):
        index._conn.execute("UPDATE calls SET record = json_remove(record, '$.latency.per_turn')")
    else:
        index._conn.execute("UPDATE calls SET record = record #- '{latency,per_turn}'")
    old = index.get(rec.call_id)
    assert old.latency.per_turn == [] and old.latency.voice_to_voice_p50_ms == 901.0
