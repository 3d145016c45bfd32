"""What the pages ask of the call index, on top of ``callindex.CallIndex`` (the only API used).

Every list filter and sort is the index's own (SQL in both engines): nothing is filtered here.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

from browser import charts
from browser.filters import BadFilter, CallListQuery
from browser.views import (
    CallPage,
    CallRow,
    CallView,
    Dashboard,
    DialAttemptView,
    NotIndexed,
    NotIndexedRow,
    TurnView,
    sip_status_text,
)
from callcenter.outcomes import CallOutcome
from callcenter.record import CallRecord
from callindex import CallFilter, CallIndex, SortField, UnindexedCall, UnindexedState, open_call_index, percentile
from callindex.api import MAX_PAGE_SIZE

log = logging.getLogger(__name__)

# The list counts matches up to here and then says "10,000+": an exact count of a broad filter
# over a million calls costs seconds, reading the page milliseconds.
LIST_COUNT_LIMIT = 10_000
DASHBOARD_DEFAULT_DAYS = 14
DASHBOARD_MAX_DAYS = 92
DASHBOARD_SLOTS_PER_DAY = 8
DASHBOARD_SAMPLE_PER_SLOT = 25
ANSWERED = {"answered", "transferred"}


def _fmt_time(dt: datetime | None) -> str:
    if dt is None:
        return "–"
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def call_row(record: CallRecord, score: float | None = None, snippet: str | None = None) -> CallRow:
    analysis = record.analysis
    return CallRow(
        call_id=record.call_id,
        started_at=_fmt_time(record.started_at),
        direction=record.direction.value,
        campaign=record.campaign_id,
        outcome=record.outcome.value,
        sentiment=analysis.sentiment.value if analysis else None,
        persona=record.persona,
        duration_s=record.duration_s,
        latency_p50_ms=record.latency.voice_to_voice_p50_ms,
        sip_status_code=record.sip_status_code,
        summary=snippet or (analysis.summary if analysis else None),
        score=score,
        analyser=analysis.analyser if analysis and not snippet else None,
        extractive=bool(analysis and not snippet and analysis.is_extractive),
    )


def not_indexed_row(call: UnindexedCall) -> NotIndexedRow:
    return NotIndexedRow(
        call_id=call.call_id,
        day=call.day.isoformat(),
        state=call.state.value,
        reason=call.reason,
        since=_fmt_time(call.since),
        since_iso=call.since.astimezone(UTC).isoformat(timespec="seconds"),
    )


class CallBrowserQueries:
    def __init__(self, index: CallIndex, embedder=None) -> None:
        self.index = index
        self._embedder = embedder

    @classmethod
    def open(cls, index_url: str) -> CallBrowserQueries:
        # the browser only reads; in production it connects as a role that may only SELECT
        return cls(open_call_index(index_url, read_only=True))

    def close(self) -> None:
        self.index.close()

    @property
    def embedder(self):
        if self._embedder is None:
            from callindex.embeddings import CallEmbedder

            self._embedder = CallEmbedder()
        return self._embedder

    # -- list, export ---------------------------------------------------------------------

    def _scan(self, filters: CallFilter, sort: SortField, descending: bool, limit: int) -> Iterator[CallRecord]:
        offset = 0
        while offset < limit:
            want = min(MAX_PAGE_SIZE, limit - offset)
            page = self.index.list_calls(
                filters, sort=sort, descending=descending, limit=want, offset=offset, count_limit=0
            )
            yield from page.items
            offset += len(page.items)
            if len(page.items) < want:
                return

    def page(self, q: CallListQuery, page_size: int) -> CallPage:
        start = (q.page - 1) * page_size
        result = self.index.list_calls(
            q.filter(),
            sort=q.sort,
            descending=q.descending,
            limit=page_size,
            offset=start,
            # Past the cap, the count only has to show that a next page exists.
            count_limit=max(LIST_COUNT_LIMIT, start + page_size),
        )
        rows = [call_row(r) for r in result.items]
        has_next = not result.total_exact or start + len(rows) < result.total
        return CallPage(rows, q.page > 1, has_next, result.total, start + 1, total_exact=result.total_exact)

    def export_rows(self, q: CallListQuery, max_rows: int) -> Iterator[CallRow]:
        """The rows of an export. The filter is built and the first page read here, so that a
        query that cannot run fails before the response starts; later pages are read as sent."""
        scan = self._scan(q.filter(), q.sort, q.descending, max_rows)
        first = next(scan, None)
        if first is None:
            return iter(())
        return (call_row(record) for record in itertools.chain([first], scan))

    # -- calls not indexed yet --------------------------------------------------------------

    def not_indexed_counts(self) -> dict[str, int]:
        return {s.value: n for s, n in self.index.count_unindexed().items()}

    def not_indexed(self, state: UnindexedState | None = None, page: int = 1, page_size: int = 50) -> NotIndexed:
        """Calls post-call was asked for but has not indexed: pending, or refused with the reason."""
        start = (page - 1) * page_size
        found = self.index.list_unindexed(state, limit=page_size, offset=start)
        counts = self.not_indexed_counts()
        return NotIndexed(
            rows=[not_indexed_row(u) for u in found.items],
            counts=counts,
            total=found.total,
            first=start + 1,
            has_prev=page > 1,
            has_next=start + len(found.items) < found.total,
        )

    # -- search ---------------------------------------------------------------------------

    def search_text(self, text: str, limit: int) -> list[CallRow]:
        try:
            hits = self.index.search_text(text, limit=limit)
        except ValueError as exc:  # nothing searchable in the text
            raise BadFilter(str(exc)) from None
        return [call_row(h.record, h.score, h.snippet) for h in hits]

    def similar_to_text(self, text: str, limit: int) -> list[CallRow]:
        hits = self.index.search_vector(self.embedder.embed_query(text), limit=limit)
        return [call_row(h.record, h.score) for h in hits]

    def similar_to_call(self, call_id: str, limit: int) -> list[CallRow] | None:
        embedding = self.index.get_embedding(call_id)
        if embedding is None:
            return None
        # The call's own stored vector: no re-embedding (and no model load) for "find similar".
        hits = self.index.search_vector(embedding, limit=limit + 1)
        return [call_row(h.record, h.score) for h in hits if h.record.call_id != call_id][:limit]

    # -- one call -------------------------------------------------------------------------

    def dial_attempts(self, record: CallRecord) -> list[DialAttemptView]:
        """Every dial of this call's contact in its campaign, found near this call's time."""
        if not record.contact_id:
            return []
        page = self.index.list_calls(
            CallFilter(campaign_id=record.campaign_id, contact_id=record.contact_id),
            sort=SortField.STARTED_AT,
            descending=False,
            limit=MAX_PAGE_SIZE,
            count_limit=0,
        )
        attempts = list(page.items)
        if all(r.call_id != record.call_id for r in attempts):
            attempts.append(record)
        return [
            DialAttemptView(
                call_id=r.call_id,
                started_at=_fmt_time(r.started_at),
                attempt=r.attempt_id,
                sip_status=sip_status_text(r.sip_status_code),
                outcome=r.outcome.value,
            )
            for r in sorted(attempts, key=lambda r: r.started_at)
        ]

    def call_view(self, call_id: str) -> CallView | None:
        record = self.index.get(call_id)
        if record is None:
            return None
        return build_call_view(record, self.dial_attempts(record))

    # -- dashboard ------------------------------------------------------------------------

    def dashboard(self, q: CallListQuery) -> Dashboard:
        if q.date_from is None and q.date_to is None:
            newest = self.index.list_calls(limit=1, count_limit=0)
            end = newest.items[0].started_at.date() if newest.items else datetime.now(UTC).date()
            q = q.model_copy(update={"date_from": end - timedelta(days=DASHBOARD_DEFAULT_DAYS - 1), "date_to": end})
        elif q.date_from is None or q.date_to is None:
            raise BadFilter("the dashboard needs both date_from and date_to (or neither, for the last 14 days)")
        days = (q.date_to - q.date_from).days + 1
        if days > DASHBOARD_MAX_DAYS:
            raise BadFilter(f"the dashboard shows at most {DASHBOARD_MAX_DAYS} days; narrow date_from..date_to")
        # Counts per day and outcome are exact (index counts); handle time, sentiment and latency
        # come from a sample spread over each day, so a busy fortnight stays one fast page.
        base = q.filter().model_dump(exclude={"started_from", "started_to", "outcomes"}, exclude_none=True)
        counts: dict[str, list[int]] = {}
        sample: list[CallRecord] = []
        slot = timedelta(days=1) / DASHBOARD_SLOTS_PER_DAY
        outcomes = (q.outcome,) if q.outcome else tuple(CallOutcome)
        for i in range(days):
            start = datetime.combine(q.date_from + timedelta(days=i), time(), UTC)
            for outcome in outcomes:
                f = CallFilter(**base, outcomes=(outcome,), started_from=start, started_to=start + timedelta(days=1))
                counts.setdefault(outcome.value, [0] * days)[i] = self.index.count(f)
            for k in range(DASHBOARD_SLOTS_PER_DAY):
                f = CallFilter(**base, started_from=start + k * slot, started_to=start + (k + 1) * slot)
                sample += self.index.list_calls(f, limit=DASHBOARD_SAMPLE_PER_SLOT, count_limit=0).items
        dashboard = build_dashboard(sample, q, outcome_counts={o: c for o, c in counts.items() if any(c)})
        dashboard.sampled = len(sample) < dashboard.total_calls
        dashboard.not_indexed = self.not_indexed_counts()
        return dashboard


def build_dashboard(records, q: CallListQuery, outcome_counts: dict[str, list[int]] | None = None) -> Dashboard:
    """Per-day figures from ``records``; with ``outcome_counts`` (exact, per outcome per day) the
    counts and answer rate come from those and ``records`` is a sample for the other figures."""
    days = []
    day = q.date_from
    while day <= q.date_to:
        days.append(day)
        day += timedelta(days=1)
    pos = {d: i for i, d in enumerate(days)}
    n = len(days)
    outcomes: dict[str, list[float]] = {}
    sentiments: dict[str, list[float]] = {}
    calls = [0] * n
    answered = [0] * n
    handle: list[list[float]] = [[] for _ in range(n)]
    analysed = [0] * n
    v2v: list[list[float]] = [[] for _ in range(n)]
    for r in records:
        i = pos.get(r.started_at.astimezone(UTC).date())
        if i is None:
            continue
        calls[i] += 1
        outcomes.setdefault(r.outcome.value, [0.0] * n)[i] += 1
        if r.outcome.value in ANSWERED:
            answered[i] += 1
            handle[i].append(r.duration_s)
        if r.analysis:
            analysed[i] += 1
            sentiments.setdefault(r.analysis.sentiment.value, [0.0] * n)[i] += 1
        if r.latency.voice_to_voice_p50_ms is not None:
            v2v[i].append(r.latency.voice_to_voice_p50_ms)
    if outcome_counts is not None:
        outcomes = {o: [float(v) for v in c] for o, c in outcome_counts.items()}
        calls = [int(sum(c[i] for c in outcomes.values())) for i in range(n)]
        answered = [int(sum(outcomes.get(o, [0] * n)[i] for o in ANSWERED)) for i in range(n)]
    total = sum(calls)
    all_handle = [h for day_h in handle for h in day_h]
    all_v2v = [v for day_v in v2v for v in day_v]
    return Dashboard(
        date_from=q.date_from,
        date_to=q.date_to,
        total_calls=total,
        answer_rate=sum(answered) / total if total else None,
        avg_handle_s=sum(all_handle) / len(all_handle) if all_handle else None,
        v2v_p50_ms=percentile(all_v2v, 0.5),
        v2v_p95_ms=percentile(all_v2v, 0.95),
        days=[d.strftime("%m-%d") for d in days],
        outcomes_per_day=dict(sorted(outcomes.items(), key=lambda kv: -sum(kv[1]))),
        answer_rate_per_day=[100 * a / c if c else None for a, c in zip(answered, calls, strict=True)],
        avg_handle_per_day=[sum(h) / len(h) if h else None for h in handle],
        sentiment_per_day={
            s: [100 * v / a if a else None for v, a in zip(counts, analysed, strict=True)]
            for s, counts in sorted(sentiments.items())
        },
        # Per day, the median and 95th percentile of the calls' median voice-to-voice latency.
        v2v_p50_per_day=[percentile(v, 0.5) for v in v2v],
        v2v_p95_per_day=[percentile(v, 0.95) for v in v2v],
    )


def _fmt_value(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(_fmt_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_fmt_value(v)}" for k, v in value.items())
    return "–" if value is None else str(value)


def _latency_rows(record: CallRecord):
    s = record.latency
    if s.per_turn:
        return [
            (f"turn {n}", t.model_dump(exclude={"turn_index"}))
            for n, t in enumerate(sorted(s.per_turn, key=lambda t: t.turn_index), start=1)
        ]
    if s.turns_measured == 0:
        return []
    # Indexed before the index kept per-turn figures: show the call's medians as one bar.
    return [
        (
            "median",
            {
                "eou_to_stt_final_ms": s.eou_to_stt_final_p50_ms,
                "llm_ttft_ms": s.llm_ttft_p50_ms,
                "tts_ttfb_ms": s.tts_ttfb_p50_ms,
                "voice_to_voice_ms": s.voice_to_voice_p50_ms,
            },
        )
    ]


def analysis_source(record: CallRecord) -> str | None:
    """Who wrote the analysis, in words an analyst reads next to the summary."""
    analysis = record.analysis
    if analysis is None:
        return None
    if analysis.is_extractive:
        text = (
            "Extractive, not written by a model: the caller's and the agent's own words, picked by rules "
            "from the redacted transcript; sentiment from a word list (VADER), follow-up and do-not-call "
            "from rules."
        )
        if record.analysis_error:
            text += f" It stands in because {record.analysis_error}"
        return text
    if analysis.analyser and analysis.analyser.startswith("llm:"):
        return f"Written by the model {analysis.analyser.removeprefix('llm:')}."
    return "Who wrote this analysis was not recorded (indexed before post-call recorded it)."


def build_call_view(record: CallRecord, dial_attempts: list[DialAttemptView]) -> CallView:
    analysis = record.analysis
    facts = [
        ("Direction", record.direction.value),
        ("Outcome", record.outcome.value),
        ("SIP status", sip_status_text(record.sip_status_code)),
        ("Campaign", record.campaign_id or "–"),
        ("Contact", record.contact_id or "–"),
        ("Dial attempt", record.attempt_id or "–"),
        ("From", record.from_number or "–"),
        ("To", record.to_number or "–"),
        ("Persona", record.persona or "–"),
        ("Agent", record.agent_name or "–"),
        ("Started (UTC)", _fmt_time(record.started_at)),
        ("Answered (UTC)", _fmt_time(record.answered_at)),
        ("Ended (UTC)", _fmt_time(record.ended_at)),
        ("Recording disclosed", _fmt_value(record.recording_disclosed)),
        ("Automated agent disclosed", _fmt_value(record.automated_agent_disclosed)),
        ("Do-not-call requested", _fmt_value(record.do_not_call_requested)),
    ]
    if record.transferred_to:
        facts.append(("Transferred to", record.transferred_to))
    if record.status.value != "indexed":
        facts.append(("Processing", f"{record.status.value}: {record.failure_reason or 'no reason recorded'}"))
    analysis_facts: list[tuple[str, str]] = []
    if analysis:
        analysis_facts = [
            ("Disposition", analysis.disposition),
            ("Sentiment", analysis.sentiment.value),
            ("Customer intent", analysis.customer_intent),
            ("Follow-up needed", _fmt_value(analysis.follow_up_needed)),
            ("Campaign goal met", _fmt_value(analysis.goal_achieved)),
        ]
    elif record.analysis_status.value == "failed":
        analysis_facts = [("Analysis", f"failed: {record.analysis_error or 'no reason recorded'}")]
    s = record.latency
    if s.turns_measured:
        analysis_facts += [
            (
                "Voice-to-voice p50",
                f"{s.voice_to_voice_p50_ms:,.0f} ms" if s.voice_to_voice_p50_ms is not None else "–",
            ),
            (
                "Voice-to-voice p95",
                f"{s.voice_to_voice_p95_ms:,.0f} ms" if s.voice_to_voice_p95_ms is not None else "–",
            ),
        ]
    return CallView(
        call_id=record.call_id,
        started_at=_fmt_time(record.started_at),
        duration_s=record.duration_s,
        direction=record.direction.value,
        campaign=record.campaign_id,
        outcome=record.outcome.value,
        sentiment=analysis.sentiment.value if analysis else None,
        summary=analysis.summary if analysis else None,
        facts=facts,
        analysis_facts=analysis_facts,
        analysis_source=analysis_source(record),
        analysis_extractive=bool(analysis and analysis.is_extractive),
        action_items=list(analysis.action_items) if analysis else [],
        extracted_fields=[(k, _fmt_value(v)) for k, v in (analysis.extracted_fields.items() if analysis else [])],
        # CallRecord transcripts are redacted by the pipeline; raw transcripts never reach the index.
        turns=[TurnView(t.speaker.value, t.text, t.start, t.end) for t in record.transcript],
        latency_chart=charts.latency_breakdown("Latency per agent turn", _latency_rows(record)),
        dial_attempts=dial_attempts,
        recording_uri=record.recording_uri,
    )
