"""The call list: filters, sort, pagination, CSV export and malformed input, in process."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date

import pytest

CALL_LINK = re.compile(r'href="http://testserver/calls/(call-[0-9a-f-]{36})"')


def listed(html: str) -> list[str]:
    """Call ids in the order the table lists them (each row links its call once)."""
    return CALL_LINK.findall(html)


def ids_where(calls, pred) -> set[str]:
    return {r.call_id for r, _ in calls if pred(r)}


def test_list_shows_every_call_newest_first(client, calls):
    r = client.get("/calls")
    assert r.status_code == 200
    newest_first = [rec.call_id for rec, _ in sorted(calls, key=lambda c: c[0].started_at, reverse=True)]
    assert listed(r.text) == newest_first
    assert f"of {len(calls)}" in r.text


FILTERS = [
    ("outcome=answered", lambda r: r.outcome.value == "answered"),
    ("campaign=spring-recall", lambda r: r.campaign_id == "spring-recall"),
    ("direction=inbound", lambda r: r.direction.value == "inbound"),
    ("date_from=2026-11-21&date_to=2026-11-21", lambda r: r.started_at.date() == date(2026, 11, 21)),
    ("date_from=2026-11-22", lambda r: r.started_at.date() >= date(2026, 11, 22)),
    ("sentiment=negative", lambda r: r.analysis is not None and r.analysis.sentiment.value == "negative"),
    ("persona=recall", lambda r: r.persona == "recall"),
    ("min_duration_s=20", lambda r: r.duration_s >= 20),
    ("max_duration_s=20&direction=inbound", lambda r: r.duration_s <= 20 and r.direction.value == "inbound"),
    ("max_latency_ms=700", lambda r: (r.latency.voice_to_voice_p50_ms or 1e9) <= 700),
    (
        "min_latency_ms=700&outcome=transferred",
        lambda r: (r.latency.voice_to_voice_p50_ms or 0) >= 700 and r.outcome.value == "transferred",
    ),
    # Empty form fields mean "no filter".
    ("campaign=&outcome=&persona=billing", lambda r: r.persona == "billing"),
]


@pytest.mark.parametrize(("query", "pred"), FILTERS, ids=[q for q, _ in FILTERS])
def test_filters_select_exactly_the_matching_calls(client, calls, query, pred):
    expected = ids_where(calls, pred)
    assert expected, "each filter case must match at least one sample call"
    assert len(expected) < len(calls), "each filter case must exclude at least one sample call"
    r = client.get(f"/calls?{query}")
    assert r.status_code == 200, r.text
    assert set(listed(r.text)) == expected


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_by_duration(client, calls, order):
    r = client.get(f"/calls?sort=duration&order={order}")
    durations = {rec.call_id: rec.duration_s for rec, _ in calls}
    got = [durations[c] for c in listed(r.text)]
    assert got == sorted(got, reverse=order == "desc")
    assert len(got) == len(calls)


def test_pages_walk_through_all_calls_without_overlap(make_client, calls):
    client = make_client(page_size=4)
    first = client.get("/calls?page=1")
    second = client.get("/calls?page=2")
    assert len(listed(first.text)) == 4 and 'rel="next"' in first.text and 'rel="prev"' not in first.text
    assert (
        len(listed(second.text)) == len(calls) - 4 and 'rel="next"' not in second.text and 'rel="prev"' in second.text
    )
    assert set(listed(first.text)) | set(listed(second.text)) == {r.call_id for r, _ in calls}
    assert listed(client.get("/calls?page=3").text) == []


def test_persona_filter_pages_too(make_client, calls):
    client = make_client(page_size=2)
    recall = ids_where(calls, lambda r: r.persona == "recall")
    one = listed(client.get("/calls?persona=recall&page=1").text)
    two = listed(client.get("/calls?persona=recall&page=2").text)
    assert len(one) == 2 and set(one) | set(two) == recall and not set(one) & set(two)


def test_csv_export_holds_the_filtered_rows(client, calls):
    r = client.get("/calls.csv?campaign=spring-recall&sort=started_at&order=asc")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    expected = sorted((rec for rec, _ in calls if rec.campaign_id == "spring-recall"), key=lambda rec: rec.started_at)
    assert [row["call_id"] for row in rows] == [rec.call_id for rec in expected]
    assert [row["sip_status_code"] for row in rows] == [str(rec.sip_status_code) for rec in expected]
    assert {row["campaign"] for row in rows} == {"spring-recall"}


def test_csv_export_respects_the_row_cap(make_client):
    rows = list(csv.DictReader(io.StringIO(make_client(csv_export_max_rows=2).get("/calls.csv").text)))
    assert len(rows) == 2


BAD = [
    ("outcome=zzz", "outcome"),
    ("direction=sideways", "direction"),
    ("date_from=2026-13-01", "date_from"),
    ("min_duration_s=abc", "min_duration_s"),
    ("max_latency_ms=-5", "max_latency_ms"),
    ("date_from=2026-11-22&date_to=2026-11-20", "date_from must be on or before date_to"),
    ("min_duration_s=60&max_duration_s=10", "min_duration_s must not exceed max_duration_s"),
    ("page=0", "page"),
    ("sort=colour", "sort"),
    ("colour=red", "unknown parameter 'colour'"),
    ("outcome=busy&outcome=failed", "more than once"),
    # Past the bounds the index's arithmetic overflowed: a 500 page, an empty 200 CSV.
    ("date_to=9999-12-31", "date_to"),
    ("date_from=0001-01-01", "date_from"),
    ("min_duration_s=1e400", "min_duration_s"),
    ("max_latency_ms=nan", "max_latency_ms"),
    ("max_duration_s=99999999999", "max_duration_s"),
    ("campaign=" + "c" * 300, "campaign"),
]


@pytest.mark.parametrize(("query", "message"), BAD, ids=[q[:40] for q, _ in BAD])
@pytest.mark.parametrize("path", ["/calls", "/calls.csv", "/dashboard"])
def test_malformed_filters_are_a_400_with_a_message(client, path, query, message):
    r = client.get(f"{path}?{query}")
    assert r.status_code == 400
    assert message in html.unescape(r.text)
    assert "Traceback" not in r.text


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1 555", "'+1 555"),
        ("@sum", "'@sum"),
        ("plain", "plain"),
        (12.5, 12.5),
        (None, ""),
    ],
)
def test_csv_cells_never_start_a_formula(value, cell):
    from browser.api.routes.calls import csv_cell

    assert csv_cell(value) == cell


def test_pages_carry_a_strict_content_security_policy(client, gcs_emulator):
    r = client.get("/calls")
    csp = r.headers["content-security-policy"]
    assert "default-src 'self'" in csp and f"media-src 'self' {gcs_emulator}" in csp
    assert r.headers["referrer-policy"] == "no-referrer"
    assert float(r.headers["server-timing"].split("dur=")[1]) > 0
    assert "style=" not in r.text and "<script>" not in r.text  # nothing inline for the CSP to block


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_sort_by_latency_puts_unmeasured_calls_last(client, calls, order):
    p50 = {rec.call_id: rec.latency.voice_to_voice_p50_ms for rec, _ in calls}
    got = [p50[c] for c in listed(client.get(f"/calls?sort=latency&order={order}").text)]
    measured = [v for v in got if v is not None]
    assert len(got) == len(calls) and measured and got[: len(measured)] == sorted(measured, reverse=order == "desc")


def test_sort_by_sentiment_goes_from_negative_to_positive(client, calls):
    from callindex.api import SENTIMENT_RANK

    rank = {rec.call_id: SENTIMENT_RANK[rec.sentiment] for rec, _ in calls if rec.sentiment}
    got = [rank[c] for c in listed(client.get("/calls?sort=sentiment&order=asc").text) if c in rank]
    assert len(set(got)) > 1 and got == sorted(got)


def test_count_stops_at_the_cap_and_the_next_page_still_shows(make_client, calls, monkeypatch):
    import browser.queries

    monkeypatch.setattr(browser.queries, "LIST_COUNT_LIMIT", 3)
    client = make_client(page_size=2)
    first = client.get("/calls?page=1").text
    assert "Calls 1–2 of 3+" in html.unescape(first) and 'rel="next"' in first
    # A page past the cap counts far enough to show whether one more exists.
    last = (len(calls) + 1) // 2
    assert 'rel="next"' not in client.get(f"/calls?page={last}").text
    assert 'rel="next"' in client.get(f"/calls?page={last - 1}").text


def test_an_extractive_summary_is_labelled_in_the_list_and_the_export(client, calls):
    billing = next(r for r, _ in calls if r.persona == "billing")
    rows = re.findall(r'<tr class="call-row">(.*?)</tr>', client.get("/calls").text, re.S)
    labelled = [row for row in rows if 'class="pill extractive"' in row]
    assert len(labelled) == 1 and billing.call_id[:18] in labelled[0]
    exported = {r["call_id"]: r["analyser"] for r in csv.DictReader(io.StringIO(client.get("/calls.csv").text))}
    assert exported[billing.call_id] == "extractive" and exported[calls[0][0].call_id] == "llm:llama-3.1-8b-instruct"
