"""What the pages show, decoupled from the index's record shape (browser.queries fills these)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from markupsafe import Markup

# Reason phrases of the SIP final responses LiveKit SIP reports most (RFC 3261 §21).
SIP_REASONS = {
    200: "OK",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    410: "Gone",
    480: "Temporarily Unavailable",
    484: "Address Incomplete",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    500: "Server Internal Error",
    503: "Service Unavailable",
    600: "Busy Everywhere",
    603: "Decline",
}


def sip_status_text(code: int | None) -> str:
    if code is None:
        return "none (no SIP leg)"
    return f"{code} {SIP_REASONS.get(code, '')}".strip()


@dataclass
class CallRow:
    """One line of the call list, the search results and the CSV export."""

    call_id: str
    started_at: str
    direction: str
    campaign: str | None
    outcome: str
    sentiment: str | None
    persona: str | None
    duration_s: float | None
    latency_p50_ms: float | None
    sip_status_code: int | None
    summary: str | None
    score: float | None = None
    # who wrote the summary shown: "llm:<model>", "extractive" (no model), None (not recorded, or a search snippet)
    analyser: str | None = None
    extractive: bool = False  # the summary is the extractive analyser's: labelled as such in the list


CSV_COLUMNS = [
    "call_id",
    "started_at",
    "direction",
    "campaign",
    "outcome",
    "sentiment",
    "persona",
    "duration_s",
    "latency_p50_ms",
    "sip_status_code",
    "summary",
    "analyser",
]


@dataclass
class CallPage:
    rows: list[CallRow]
    has_prev: bool
    has_next: bool
    total: int | None
    first: int
    total_exact: bool = True  # False: total is where the count stopped ("10,000+")

    @property
    def summary(self) -> str:
        if not self.rows:
            return "No calls match."
        last = self.first + len(self.rows) - 1
        plus = "" if self.total_exact else "+"
        of = f" of {self.total:,}{plus}" if self.total is not None else ""
        return f"Calls {self.first:,}–{last:,}{of}"


# How each state of a call not indexed yet reads on the page (callindex.UnindexedState's values).
NOT_INDEXED_LABELS = {
    "pending": "pending",
    "unreadable": "unreadable report",
    "failed": "processing failed",
}


@dataclass
class NotIndexedRow:
    """A call post-call has not indexed (yet): its id, day, state and reason only, never its words."""

    call_id: str
    day: str
    state: str  # callindex.UnindexedState's value
    reason: str
    since: str  # UTC, YYYY-MM-DD HH:MM:SS
    since_iso: str

    @property
    def label(self) -> str:
        return NOT_INDEXED_LABELS.get(self.state, self.state)


@dataclass
class NotIndexed:
    """One page of the calls not indexed yet, and how many there are by state."""

    rows: list[NotIndexedRow]
    counts: dict[str, int]  # state -> calls, every state
    total: int  # rows matching the page's state filter
    first: int = 1
    has_prev: bool = False
    has_next: bool = False

    @property
    def all(self) -> int:
        return sum(self.counts.values())

    @property
    def summary(self) -> str:
        if not self.all:
            return "Every call post-call has seen is indexed."
        parts = [f"{n:,} {NOT_INDEXED_LABELS[s]}" for s, n in self.counts.items() if n]
        return f"{self.all:,} call{'s' if self.all != 1 else ''} not indexed yet: {', '.join(parts)}"


@dataclass
class TurnView:
    speaker: str
    text: str
    start: float
    end: float


@dataclass
class DialAttemptView:
    call_id: str
    started_at: str
    attempt: str | None
    sip_status: str
    outcome: str


@dataclass
class CallView:
    call_id: str
    started_at: str
    duration_s: float | None
    direction: str
    campaign: str | None
    outcome: str
    sentiment: str | None
    summary: str | None
    facts: list[tuple[str, str]]
    analysis_facts: list[tuple[str, str]]
    analysis_source: str | None  # who wrote the analysis, in words, shown next to the summary
    analysis_extractive: bool
    action_items: list[str]
    extracted_fields: list[tuple[str, str]]
    turns: list[TurnView]
    latency_chart: Markup
    dial_attempts: list[DialAttemptView]
    audio_url: str | None = None
    audio_problem: str | None = None
    recording_uri: str | None = None


@dataclass
class Dashboard:
    total_calls: int
    answer_rate: float | None
    avg_handle_s: float | None
    v2v_p50_ms: float | None
    v2v_p95_ms: float | None
    sampled: bool = False  # handle time, sentiment and latency from a sample of each day's calls
    date_from: date | None = None
    date_to: date | None = None
    days: list[str] = field(default_factory=list)
    outcomes_per_day: dict[str, list[float]] = field(default_factory=dict)
    answer_rate_per_day: list[float | None] = field(default_factory=list)
    avg_handle_per_day: list[float | None] = field(default_factory=list)
    sentiment_per_day: dict[str, list[float | None]] = field(default_factory=dict)
    v2v_p50_per_day: list[float | None] = field(default_factory=list)
    v2v_p95_per_day: list[float | None] = field(default_factory=list)
    not_indexed: dict[str, int] = field(default_factory=dict)  # calls not indexed yet, by state

    @property
    def not_indexed_total(self) -> int:
        return sum(self.not_indexed.values())
