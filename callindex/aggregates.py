"""Aggregates over indexed calls: the one percentile every reader of the index uses (the
post-call record's per-call summary, the Dagster latency views, the browser's dashboard)."""

from __future__ import annotations

import math
from collections.abc import Iterable


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The ``q``-quantile (0 <= q <= 1) by linear interpolation between the closest ranks, as
    numpy's and pandas' defaults compute it; missing values (None, NaN) are skipped. None when
    nothing is left."""
    if not 0.0 <= q <= 1.0:
        raise ValueError(f"percentile q must be between 0 and 1, got {q}")
    xs = sorted(float(v) for v in values if v is not None and not math.isnan(v))
    if not xs:
        return None
    k = (len(xs) - 1) * q
    lo = math.floor(k)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def rounded(value: float | None, digits: int = 1) -> float | None:
    return None if value is None else round(value, digits)
