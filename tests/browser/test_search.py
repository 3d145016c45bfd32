"""Full-text search over redacted transcripts and summaries, and "find similar" by embedding."""

from __future__ import annotations

import html
import re

import pytest

LINK = re.compile(r'href="http://testserver/calls/(call-[0-9a-f-]{36})" class="call-link"')


def found(text: str) -> list[str]:
    return LINK.findall(text)


def test_full_text_finds_calls_by_transcript_and_summary_words(client, calls):
    r = client.get("/search?q=cleaning+appointment")
    assert r.status_code == 200
    expected = {
        rec.call_id
        for rec, _ in calls
        if "cleaning appointment" in (rec.transcript_text + rec.analysis.summary if rec.analysis else "")
    }
    assert set(found(r.text)) == expected and len(expected) == 2
    assert "[cleaning]" in r.text or "[appointment]" in r.text  # the index's snippet marks hits


def test_full_text_search_reads_the_redacted_transcript(client, calls):
    assert found(client.get("/search?q=4111").text) == []
    paid = next(r for r, _ in calls if r.attempt_id == "attempt-42-2")
    assert found(client.get("/search?q=overdue+balance").text) == [paid.call_id]


def test_find_similar_calls_ranks_the_closest_call_first(client, calls):
    booking, rescheduling = calls[0][0], calls[5][0]
    r = client.get(f"/search?similar_to={booking.call_id}")
    assert r.status_code == 200
    results = found(r.text)
    assert booking.call_id not in results
    assert results[0] == rescheduling.call_id
    assert len(results) == len(calls) - 1


def test_similar_meaning_search_from_text(client, calls):
    billing = next(r for r, _ in calls if r.persona == "billing")
    assert found(client.get("/search?q=I+was+billed+two+times&mode=similar").text)[0] == billing.call_id


def test_call_page_links_to_find_similar(client, calls):
    record, _ = calls[0]
    assert f'href="http://testserver/search?similar_to={record.call_id}"' in client.get(f"/calls/{record.call_id}").text


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("q=%21%21%21", 400, "has no words to search for"),
        ("q=x&mode=fuzzy", 400, "mode must be one of text, similar"),
        ("q=x&limit=0", 400, "limit must be a whole number from 1 to 200"),
        ("q=x&sort=duration", 400, "unknown parameter 'sort'"),
        ("similar_to=banana", 400, "similar_to must be a call id"),
        (
            "similar_to=call-01a1f82f-1e80-73a0-bd96-000000000000",
            404,
            "no call call-01a1f82f-1e80-73a0-bd96-000000000000",
        ),
        ("q=" + "a" * 501, 400, "longer than 500 characters"),
    ],
)
def test_bad_searches_say_what_to_fix(client, query, status, message):
    r = client.get(f"/search?{query}")
    assert r.status_code == status
    assert message in html.unescape(r.text)


def test_find_similar_uses_the_stored_embedding_without_the_model(index_path, calls):
    """The call's own vector comes from the index: the embedding model is never loaded for it."""
    from browser.queries import CallBrowserQueries
    from callindex.sqlite import SqliteCallIndex

    class NoModel:
        def embed_query(self, text):
            raise AssertionError("find similar re-embedded the call's text")

    booking, rescheduling = calls[0][0], calls[5][0]
    queries = CallBrowserQueries(SqliteCallIndex(index_path), embedder=NoModel())
    try:
        rows = queries.similar_to_call(booking.call_id, 3)
        assert rows[0].call_id == rescheduling.call_id and booking.call_id not in {r.call_id for r in rows}
        assert queries.similar_to_call("call-00000000-0000-7000-8000-000000000000", 3) is None
    finally:
        queries.close()
