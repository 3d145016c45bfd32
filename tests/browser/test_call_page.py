"""One call's page: analysis, redacted transcript, recording link, latency chart, SIP status and dial attempts."""

from __future__ import annotations

import html
import json
import re

from tests.browser.calls import BUCKET, RAW_CARD, sample_calls


def by_attempt(calls, attempt_id):
    return next((r, lat) for r, lat in calls if r.attempt_id == attempt_id)


def test_call_page_shows_analysis_and_extracted_fields(client, calls):
    record, _ = calls[0]
    r = client.get(f"/calls/{record.call_id}")
    assert r.status_code == 200
    text = html.unescape(r.text)
    assert record.analysis.summary in text
    assert "appointment_booked" in text and "book a cleaning appointment" in text
    assert "send a reminder text on Wednesday" in text
    assert re.search(r"<dt>appointment_time</dt><dd>14:00</dd>", text)


def test_transcript_is_the_redacted_one_in_order_with_timestamps(client, calls):
    record, _ = by_attempt(calls, "attempt-42-2")
    text = html.unescape(client.get(f"/calls/{record.call_id}").text)
    lines = re.findall(r'<li class="(agent|caller)" data-start="([\d.]+)" data-end="([\d.]+)"', text)
    assert [(s.speaker.value, s.start, s.end) for s in record.transcript] == [
        (sp, float(a), float(b)) for sp, a, b in lines
    ]
    assert "it is [CARD], expiry next May" in text
    # The session report in the bucket holds the raw number; the page never shows it.
    assert RAW_CARD not in text and RAW_CARD.replace(" ", "") not in text
    # Timestamps as m:ss next to each line.
    assert '<span class="ts">0:00</span>' in text


def latency_parts(text: str) -> list[tuple[str, str, str]]:
    chart = re.search(r'<svg[^>]*class="chart latency-chart".*?</svg>', text, re.S).group(0)
    return re.findall(r'class="latency-part"><title>(turn \d+|median) · ([^:]+): ([\d,.]+) ms', chart)


def test_latency_chart_has_a_bar_per_agent_turn_from_the_index(client, calls):
    record, latency = by_attempt(calls, "attempt-42-2")
    text = client.get(f"/calls/{record.call_id}").text
    parts = latency_parts(text)
    assert len(parts) == 3 * len(latency)
    expected = {(f"turn {n}", "LLM first token", f"{t.llm_ttft_ms:,.0f}") for n, t in enumerate(latency, start=1)}
    assert expected <= set(parts)
    assert text.count("voice to voice:") == len(latency)


def test_per_turn_latency_is_served_with_the_bucket_unreachable(make_client, calls):
    from tests.conftest import free_port

    client = make_client(storage_emulator_host=f"http://127.0.0.1:{free_port()}")
    record, latency = by_attempt(calls, "attempt-42-2")
    r = client.get(f"/calls/{record.call_id}")
    assert r.status_code == 200
    assert {turn for turn, _, _ in latency_parts(r.text)} == {f"turn {n}" for n in range(1, len(latency) + 1)}


def test_a_call_indexed_before_per_turn_latency_shows_its_medians():
    from browser.queries import build_call_view

    record, _ = by_attempt(sample_calls(), "attempt-42-2")
    older = record.model_copy(update={"latency": record.latency.model_copy(update={"per_turn": []})})
    parts = latency_parts(str(build_call_view(older, []).latency_chart))
    assert {turn for turn, _, _ in parts} == {"median"}
    assert ("median", "LLM first token", f"{record.latency.llm_ttft_p50_ms:,.0f}") in parts


def test_audio_is_linked_from_the_emulator(client, calls, gcs_emulator):
    record, _ = calls[0]
    text = html.unescape(client.get(f"/calls/{record.call_id}").text)
    src = re.search(r'<audio id="recording"[^>]*src="([^"]+)"', text).group(1)
    object_name = record.recording_path.replace("/", "%2F")
    assert src == f"{gcs_emulator}/download/storage/v1/b/{BUCKET}/o/{object_name}?alt=media"


def test_call_without_recording_says_so(client, calls):
    record, _ = by_attempt(calls, "attempt-42-1")
    text = client.get(f"/calls/{record.call_id}").text
    assert 'id="recording"' not in text and "No recording is stored for this call." in text


def test_sip_status_and_every_dial_attempt_of_the_contact(client, calls):
    record, _ = by_attempt(calls, "attempt-42-2")
    first, _ = by_attempt(calls, "attempt-42-1")
    text = client.get(f"/calls/{record.call_id}").text
    attempts = re.search(r'<table class="calls" id="dial-attempts">.*?</table>', text, re.S).group(0)
    assert "480 Temporarily Unavailable" in attempts and "200 OK" in attempts
    assert f'/calls/{first.call_id}"' in attempts and "this call" in attempts
    assert "attempt-7-1" not in attempts  # another contact of the same campaign
    busy, _ = by_attempt(calls, "attempt-7-1")
    assert "486 Busy Here" in client.get(f"/calls/{busy.call_id}").text


def test_unknown_call_is_a_404_page(client):
    missing = "call-01a1f82f-1e80-73a0-bd96-000000000000"
    r = client.get(f"/calls/{missing}")
    assert r.status_code == 404
    assert f"no call {missing} in the call index" in r.text
    bad = client.get("/calls/not-a-call")
    assert bad.status_code == 404 and "is not a call id" in html.unescape(bad.text)
    page = client.get("/no/such/page")
    assert page.status_code == 404 and "there is no page at /no/such/page" in page.text


def test_every_call_page_view_is_audited(make_client, calls, tmp_path, caplog):
    audit = tmp_path / "audit.jsonl"
    client = make_client(audit_log_path=audit)
    record, _ = calls[0]
    with caplog.at_level("INFO", logger="browser.audit"):
        assert client.get(f"/calls/{record.call_id}").status_code == 200
        assert client.get(f"/calls/{record.call_id}").status_code == 200
        client.get("/calls/call-01a1f82f-1e80-73a0-bd96-000000000000")  # not found: nothing viewed
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [(e["event"], e["call_id"], e["analyst"]) for e in entries] == [
        ("call_viewed", record.call_id, "local-analyst")
    ] * 2
    assert sum(record.call_id in m for m in caplog.messages) == 2


def test_searches_and_csv_exports_are_audited_too(make_client, calls, tmp_path):
    """An export carries up to 100,000 summaries out at once: who took which, and who searched
    for what, is logged like a page view."""
    audit = tmp_path / "audit.jsonl"
    client = make_client(audit_log_path=audit)
    assert client.get("/calls.csv", params={"outcome": "answered"}).status_code == 200
    assert client.get("/search", params={"q": "refund"}).status_code == 200
    assert client.get("/search").status_code == 200  # the empty form: no search made
    entries = [json.loads(line) for line in audit.read_text().splitlines()]
    assert [e["event"] for e in entries] == ["calls_exported", "calls_searched"]
    exported, searched = entries
    assert exported["filters"] == "outcome=answered" and exported["analyst"] == "local-analyst"
    assert searched["query"] == "refund" and searched["mode"] == "text" and isinstance(searched["results"], int)


def test_an_index_failure_is_a_500_page_without_a_stack_trace(make_client):
    client = make_client()
    client.app.state.queries.index.close()  # the store goes away under the app
    r = client.get("/calls")
    assert r.status_code == 500
    assert "logged with reference" in r.text and "Traceback" not in r.text and "apsw" not in r.text


def test_the_summary_says_who_wrote_it(client, calls):
    billing = next(r for r, _ in calls if r.persona == "billing")  # the extractive analyser's
    text = html.unescape(client.get(f"/calls/{billing.call_id}").text)
    summary_card = text[text.index("<h2>Summary") : text.index('id="analysis"')]
    assert re.search(r'<h2>Summary <span class="pill extractive" id="extractive-label">extractive</span></h2>', text)
    assert "Extractive, not written by a model" in summary_card and billing.analysis.summary in summary_card
    booking, _ = calls[0]  # the model's
    text = html.unescape(client.get(f"/calls/{booking.call_id}").text)
    assert "Written by the model llama-3.1-8b-instruct." in text and "extractive" not in text
    paid, _ = by_attempt(calls, "attempt-42-2")  # indexed before the label
    assert "was not recorded" in html.unescape(client.get(f"/calls/{paid.call_id}").text)
