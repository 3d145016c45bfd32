"""Analyst views (pandas) over the call index, as Dagster assets for one day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from callcenter.outcomes import CallOutcome
from callcenter.record import LatencySummary, Sentiment
from callindex import open_call_index
from orchestration.defs.postcall.resources import CallIndexResource
from orchestration.defs.postcall.views import VIEW_ASSETS
from tests.postcall.test_callindex import unit

pytestmark = pytest.mark.xdist_group("postcall")


def test_daily_views(tmp_path, record_factory) -> None:
    store = CallIndexResource(data_dir=str(tmp_path))
    day = datetime(2026, 11, 24, tzinfo=UTC)
    index = open_call_index(store.resolved_url())
    recs = []
    for i in range(8):
        rec = record_factory(
            day + timedelta(hours=i),
            campaign_id="recall" if i < 6 else None,
            outcome=CallOutcome.VOICEMAIL if i % 3 == 0 else CallOutcome.ANSWERED,
            sentiment=Sentiment.NEGATIVE if i % 2 else Sentiment.POSITIVE,
        )
        recs.append(
            rec.model_copy(update={"latency": LatencySummary(turns_measured=2, voice_to_voice_p50_ms=500.0 + 100 * i)})
        )
    recs.append(record_factory(day - timedelta(hours=1)))  # the day before: not in this partition
    index.upsert_many((r, unit(i)) for i, r in enumerate(recs))
    index.close()

    result = dg.materialize(
        VIEW_ASSETS,
        partition_key="2026-11-24",
        resources={"call_index_store": store},
        instance=dg.DagsterInstance.ephemeral(),
    )
    outcomes = result.output_for_node("daily_call_outcomes")
    counts = {(r.campaign_id, r.outcome): r.calls for r in outcomes.itertuples()}
    assert counts == {
        ("recall", "voicemail"): 2,
        ("recall", "answered"): 4,
        ("(inbound / none)", "voicemail"): 1,
        ("(inbound / none)", "answered"): 1,
    }
    sentiment = result.output_for_node("call_sentiment")
    recall = sentiment[sentiment.campaign_id == "recall"].set_index("sentiment")
    assert recall.loc["negative", "calls"] == 3 and recall.loc["negative", "share"] == 0.5
    latency = result.output_for_node("agent_latency_percentiles").set_index("campaign_id")
    assert latency.loc["recall", "calls"] == 6 and latency.loc["recall", "v2v_p50_ms"] == 750.0
