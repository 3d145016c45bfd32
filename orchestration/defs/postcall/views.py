"""Tabular views for analysts (pandas), one per day, computed from the call index."""

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pandas as pd

from callcenter.record import CallRecord
from callindex import CallFilter, CallIndex, SortField, percentile
from callindex.aggregates import rounded
from orchestration.defs.postcall.partitions import daily_calls
from orchestration.defs.postcall.resources import CallIndexResource

GROUP = "postcall_views"
PAGE = 500
NO_CAMPAIGN = "(inbound / none)"


def day_records(index: CallIndex, day: date) -> Iterator[CallRecord]:
    start = datetime(day.year, day.month, day.day, tzinfo=UTC)
    filters = CallFilter(started_from=start, started_to=start + timedelta(days=1))
    offset = 0
    while True:
        page = index.list_calls(filters, sort=SortField.STARTED_AT, descending=False, limit=PAGE, offset=offset)
        yield from page.items
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return


def calls_frame(records: Iterator[CallRecord]) -> pd.DataFrame:
    rows = [
        {
            "call_id": r.call_id,
            "campaign_id": r.campaign_id or NO_CAMPAIGN,
            "direction": r.direction.value,
            "outcome": r.outcome.value,
            "disposition": r.disposition,
            "sentiment": r.sentiment.value if r.sentiment else None,
            "duration_s": r.duration_s,
            "voice_to_voice_p50_ms": r.latency.voice_to_voice_p50_ms,
            "voice_to_voice_p95_ms": r.latency.voice_to_voice_p95_ms,
            "llm_ttft_p50_ms": r.latency.llm_ttft_p50_ms,
            "tts_ttfb_p50_ms": r.latency.tts_ttfb_p50_ms,
        }
        for r in records
    ]
    return pd.DataFrame(rows, columns=list(rows[0]) if rows else ["call_id", "campaign_id", "outcome"])


def outcome_counts(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(columns=["campaign_id", "outcome", "calls"])
    return frame.groupby(["campaign_id", "outcome"]).size().reset_index(name="calls")


def sentiment_counts(frame: pd.DataFrame) -> pd.DataFrame:
    if frame.empty or "sentiment" not in frame:
        return pd.DataFrame(columns=["campaign_id", "sentiment", "calls", "share"])
    analysed = frame.dropna(subset=["sentiment"])
    out = analysed.groupby(["campaign_id", "sentiment"]).size().reset_index(name="calls")
    out["share"] = (out["calls"] / out.groupby("campaign_id")["calls"].transform("sum")).round(3)
    return out


def latency_percentiles(frame: pd.DataFrame) -> pd.DataFrame:
    """Per campaign: percentiles over calls of each call's median voice-to-voice latency (ms)."""
    cols = ["campaign_id", "calls", "v2v_p50_ms", "v2v_p90_ms", "v2v_p95_ms", "llm_ttft_p50_ms", "tts_ttfb_p50_ms"]
    if frame.empty or "voice_to_voice_p50_ms" not in frame:
        return pd.DataFrame(columns=cols)
    measured = frame.dropna(subset=["voice_to_voice_p50_ms"])
    rows = []
    for campaign, group in measured.groupby("campaign_id"):
        v2v = group["voice_to_voice_p50_ms"]
        rows.append(
            {
                "campaign_id": campaign,
                "calls": len(group),
                "v2v_p50_ms": rounded(percentile(v2v, 0.5)),
                "v2v_p90_ms": rounded(percentile(v2v, 0.9)),
                "v2v_p95_ms": rounded(percentile(v2v, 0.95)),
                "llm_ttft_p50_ms": rounded(percentile(group["llm_ttft_p50_ms"], 0.5)),
                "tts_ttfb_p50_ms": rounded(percentile(group["tts_ttfb_p50_ms"], 0.5)),
            }
        )
    return pd.DataFrame(rows, columns=cols)


def _load(context: dg.AssetExecutionContext, store: CallIndexResource) -> pd.DataFrame:
    index = store.open()
    try:
        return calls_frame(day_records(index, date.fromisoformat(context.partition_key)))
    finally:
        index.close()


def _output(frame: pd.DataFrame) -> dg.Output:
    return dg.Output(
        frame, metadata={"rows": len(frame), "preview": dg.MetadataValue.md(frame.head(50).to_markdown(index=False))}
    )


_VIEW = {
    "partitions_def": daily_calls,
    "group_name": GROUP,
    "deps": ["call_index"],
    "kinds": {"pandas"},
    "tags": {"callcenter/domain": "postcall"},
}


@dg.asset(**_VIEW)
def daily_call_outcomes(context: dg.AssetExecutionContext, call_index_store: CallIndexResource) -> dg.Output:
    """Calls per campaign and outcome for the day."""
    return _output(outcome_counts(_load(context, call_index_store)))


@dg.asset(**_VIEW)
def call_sentiment(context: dg.AssetExecutionContext, call_index_store: CallIndexResource) -> dg.Output:
    """Caller sentiment per campaign (analysed calls only), with each sentiment's share."""
    return _output(sentiment_counts(_load(context, call_index_store)))


@dg.asset(**_VIEW)
def agent_latency_percentiles(context: dg.AssetExecutionContext, call_index_store: CallIndexResource) -> dg.Output:
    """Voice-to-voice latency percentiles per campaign, from the agents' session reports."""
    return _output(latency_percentiles(_load(context, call_index_store)))


VIEW_ASSETS = [daily_call_outcomes, call_sentiment, agent_latency_percentiles]
