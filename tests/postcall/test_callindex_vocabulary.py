"""The call index owns its query vocabulary and its aggregates: the browser's query is the
index's ``CallQuery``, and one percentile serves the record, the views and the dashboard."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd
import pytest

from callcenter.outcomes import CallOutcome
from callindex import CallFilter, CallQuery, SortField, percentile


@pytest.mark.parametrize("n", [1, 2, 3, 7, 20])
@pytest.mark.parametrize("q", [0.0, 0.1, 0.5, 0.9, 0.95, 1.0])
def test_percentile_is_numpys_and_pandas_default(n: int, q: float) -> None:
    values = list(np.random.default_rng(n).uniform(100, 2000, size=n))
    assert percentile(values, q) == pytest.approx(np.percentile(values, q * 100))
    assert percentile(values, q) == pytest.approx(pd.Series(values).quantile(q))


def test_percentile_skips_missing_values_and_has_none_for_nothing() -> None:
    assert percentile([None, math.nan, 300.0, 100.0], 0.5) == 200.0
    assert percentile([], 0.5) is None and percentile([None, math.nan], 0.95) is None
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile([1.0], 95)


def test_a_query_in_the_analysts_words_is_the_engines_filter() -> None:
    q = CallQuery.model_validate(
        {
            "date_from": "2026-11-20",
            "date_to": "2026-11-21",
            "campaign": "spring-recall",
            "outcome": "answered",
            "min_latency_ms": "700",
            "persona": "Recall",
            "sort": "latency",
            "order": "asc",
        }
    )
    assert q.filter() == CallFilter(
        campaign_id="spring-recall",
        outcomes=(CallOutcome.ANSWERED,),
        persona="Recall",
        min_latency_p50_ms=700.0,
        started_from=datetime(2026, 11, 20, tzinfo=UTC),
        started_to=datetime(2026, 11, 22, tzinfo=UTC),  # the last day is inclusive
    )
    assert q.sort is SortField.LATENCY and q.descending is False
    assert CallQuery(date_to=date(2026, 11, 21)).filter() == CallFilter(started_to=datetime(2026, 11, 22, tzinfo=UTC))


def test_the_browsers_list_query_is_the_index_query() -> None:
    from browser.filters import CallListQuery, parse_list_query

    q = parse_list_query([("campaign", "spring-recall"), ("sort", "duration"), ("page", "2")])
    assert isinstance(q, CallQuery) and issubclass(CallListQuery, CallQuery)
    assert q.sort is SortField.DURATION and q.filter() == CallFilter(campaign_id="spring-recall")
    assert {f.value for f in SortField} == {"started_at", "duration", "latency", "sentiment", "campaign", "outcome"}
