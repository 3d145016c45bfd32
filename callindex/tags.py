"""Filter values as full-text tokens, so FTS5 applies filters while it matches words.

Ranking every match of a common word ("appointment") and then filtering is slow at a million
calls; intersecting the word's posting list with a campaign's or a week's is not. Each filter
value becomes one alphanumeric token in the ``tags`` column; a date range becomes the month
and day tokens covering it. The exact SQL filters still apply afterwards: tags only prune.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime, timedelta

from callindex.api import CallFilter

MAX_DATE_TOKENS = 64  # wider ranges are left to the SQL filter alone


def _token(kind: str, value: object) -> str:
    return kind + hashlib.sha1(str(value).lower().encode()).hexdigest()[:12]


def day_token(day: date) -> str:
    return f"d{day:%Y%m%d}"


def month_token(day: date) -> str:
    return f"m{day:%Y%m}"


def filter_tags(cols: dict[str, object]) -> list[str]:
    """Tokens for one call's filter columns (as stored in ``calls``: '' / -1 for unknown)."""
    started = datetime.fromtimestamp(int(cols["started_at"]) / 1000, tz=UTC).date()
    return [
        _token("cmp", cols["campaign_id"]),
        _token("dir", cols["direction"]),
        _token("out", cols["outcome"]),
        _token("snt", cols["sentiment"]),
        _token("dsp", cols["disposition"]),
        _token("fu", cols["follow_up_needed"]),
        _token("an", cols["analysis_status"]),
        _token("st", cols["status"]),
        day_token(started),
        month_token(started),
        # Campaign x date: the common "this campaign, this week" search reads two short lists.
        _token("cd", f"{cols['campaign_id']}|{started:%Y%m%d}"),
        _token("cm", f"{cols['campaign_id']}|{started:%Y%m}"),
    ]


def _date_tokens(start: datetime, end: datetime, campaign: str | None = None) -> list[str] | None:
    first = start.astimezone(UTC).date()
    last = (end.astimezone(UTC) - timedelta(microseconds=1)).date()
    if last < first:
        return None
    tokens: list[str] = []
    day = first
    while day <= last:
        month_end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if day.day == 1 and month_end <= last:
            tokens.append(month_token(day) if campaign is None else _token("cm", f"{campaign}|{day:%Y%m}"))
            day = month_end + timedelta(days=1)
        else:
            tokens.append(day_token(day) if campaign is None else _token("cd", f"{campaign}|{day:%Y%m%d}"))
            day += timedelta(days=1)
        if len(tokens) > MAX_DATE_TOKENS:
            return None
    return tokens


def tag_match(filters: CallFilter) -> str | None:
    """An FTS5 expression over the tags column, or None when no filter can be pushed down."""
    parts: list[str] = []
    date_tokens = None
    if filters.started_from is not None and filters.started_to is not None:
        date_tokens = _date_tokens(filters.started_from, filters.started_to, filters.campaign_id)
    if date_tokens is not None:
        parts.append("(" + " OR ".join(date_tokens) + ")")  # campaign x date when a campaign is given
    elif filters.campaign_id is not None:
        parts.append(_token("cmp", filters.campaign_id))
    if filters.outcomes:
        parts.append("(" + " OR ".join(_token("out", o.value) for o in filters.outcomes) + ")")
    if filters.direction is not None:
        parts.append(_token("dir", filters.direction.value))
    if filters.sentiment is not None:
        parts.append(_token("snt", filters.sentiment.value))
    if filters.disposition is not None:
        parts.append(_token("dsp", filters.disposition))
    if filters.follow_up_needed is not None:
        parts.append(_token("fu", int(filters.follow_up_needed)))
    if filters.analysis_status is not None:
        parts.append(_token("an", filters.analysis_status.value))
    if filters.status is not None:
        parts.append(_token("st", filters.status.value))
    return " AND ".join(parts) if parts else None
