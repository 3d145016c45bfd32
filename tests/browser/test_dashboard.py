"""The dashboard's figures and charts, from the sample index."""

from __future__ import annotations

import re
from datetime import date

from browser.charts import latency_breakdown, line_chart, stacked_bars
from browser.filters import parse_list_query
from browser.queries import build_dashboard


def test_dashboard_renders_five_charts_and_the_headline_figures(client, calls):
    r = client.get("/dashboard?date_from=2026-11-19&date_to=2026-11-23")
    assert r.status_code == 200
    assert len(re.findall(r"<svg ", r.text)) == 5
    assert re.search(r'id="stat-calls">6<', r.text)
    answered = sum(rec.outcome.value in ("answered", "transferred") for rec, _ in calls)
    assert f'id="stat-answer-rate">{100 * answered / len(calls):.1f}%<' in r.text
    # Calls per day by outcome: one stacked segment per (day, outcome) present.
    assert "11-21 · answered: 1" in r.text and "11-21 · busy: 1" in r.text and "11-20 · no_answer: 1" in r.text


def test_dashboard_defaults_to_the_fortnight_before_the_newest_call(client):
    r = client.get("/dashboard")
    assert re.search(r'id="stat-calls">6<', r.text)
    assert 'value="2026-11-22"' in r.text and 'value="2026-11-09"' in r.text


def test_dashboard_aggregates_per_day(calls):
    q = parse_list_query([("date_from", "2026-11-20"), ("date_to", "2026-11-22")])
    d = build_dashboard((r for r, _ in calls), q)
    assert d.days == ["11-20", "11-21", "11-22"]
    assert d.outcomes_per_day["answered"] == [1, 1, 1]
    assert d.answer_rate_per_day == [50.0, 50.0, 100.0]
    day3 = [r for r, _ in calls if r.started_at.date() == date(2026, 11, 22)]
    assert d.avg_handle_per_day[2] == sum(r.duration_s for r in day3) / 2
    assert d.sentiment_per_day["negative"] == [0.0, 0.0, 50.0]


def test_empty_range_draws_empty_charts(client):
    r = client.get("/dashboard?date_from=2020-01-01&date_to=2020-01-03")
    assert r.status_code == 200 and "no calls in this range" in r.text


def test_stacked_bar_heights_are_proportional():
    svg = str(stacked_bars("t", ["a", "b"], {"answered": [10, 5], "busy": [0, 5]}))
    heights = [
        float(h)
        for h in re.findall(r'<rect x="[\d.]+" y="[\d.]+" width="[\d.]+" height="([\d.]+)" fill="[^"]+"><title>', svg)
    ]
    assert len(heights) == 3 and abs(heights[0] - 2 * heights[1]) < 0.2 and abs(heights[1] - heights[2]) < 0.2


def test_line_chart_breaks_at_gaps_and_escapes_labels():
    svg = str(line_chart("t", ["<d1>", "d2", "d3", "d4"], {"p50": [1, 2, None, 4]}))
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 3 and "&lt;d1&gt;" in svg


def test_latency_breakdown_scales_to_the_slowest_turn():
    svg = str(
        latency_breakdown(
            "t", [("turn 1", {"llm_ttft_ms": 100, "voice_to_voice_ms": 150}), ("turn 2", {"llm_ttft_ms": 400})]
        )
    )
    widths = [float(w) for w in re.findall(r'width="([\d.]+)" height="\d+" fill="#7c3aed" class="latency-part"', svg)]
    assert len(widths) == 2 and abs(widths[1] - 4 * widths[0]) < 0.5


def test_dashboard_counts_match_the_list_for_index_and_browser_side_filters(client, calls):
    for query, pred in [
        ("campaign=spring-recall", lambda r: r.campaign_id == "spring-recall"),
        ("persona=recall", lambda r: r.persona == "recall"),  # persona is an index filter too
        ("outcome=answered", lambda r: r.outcome.value == "answered"),
    ]:
        r = client.get(f"/dashboard?date_from=2026-11-19&date_to=2026-11-23&{query}")
        expected = sum(pred(rec) for rec, _ in calls)
        assert re.search(rf'id="stat-calls">{expected}<', r.text), query


def test_dashboard_range_must_be_whole_and_bounded(client):
    assert "at most 92 days" in client.get("/dashboard?date_from=2026-01-01&date_to=2026-11-01").text
    one_sided = client.get("/dashboard?date_from=2026-11-01")
    assert one_sided.status_code == 400 and "needs both date_from and date_to" in one_sided.text
