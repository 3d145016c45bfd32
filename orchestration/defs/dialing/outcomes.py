"""Close dial attempts from the agent's session reports in the recordings bucket.

The agent writes ``recordings/YYYY/MM/DD/<call_id>/session.json`` last, for every call it
was dispatched to (answered or not); the day is the call id's (``callcenter.paths``), so an open
attempt's report is read at one path. Its outcome closes the attempt; a do-not-call request
made during the call goes straight into suppression, before the next tick plans. Inbound calls
are found by the one lister of completed calls (``callcenter.bucket.list_calls``), which post-call
discovery uses too.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from pydantic import ValidationError

from callcenter.bucket import ListedObject, ReportCursor, list_calls
from callcenter.do_not_call import DoNotCallRequest
from callcenter.outcomes import CallDirection, CallOutcome, outcome_for_sip_status
from callcenter.paths import DO_NOT_CALL_FILENAME, report_path
from callcenter.report import SessionReport, Speaker, parse_report
from orchestration.defs.dialing.contacts import normalise_number
from orchestration.defs.dialing.ledger import AttemptStatus, DialStore

log = logging.getLogger(__name__)

# Answered calls where the agent says nothing for this long count as abandoned (FTC/Ofcom
# style rule: abandoned calls must stay under 3% per campaign over 30 days).
ABANDON_AFTER_S = 2.0

ReadReport = Callable[[str], bytes | None]  # object name -> bytes, None when absent


@dataclass
class OutcomeSweep:
    closed: Counter[str] = field(default_factory=Counter)
    do_not_call: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    timed_out: list[str] = field(default_factory=list)
    callbacks: list[str] = field(default_factory=list)  # call ids whose callback was scheduled


def is_abandoned(report: SessionReport) -> bool | None:
    """None when no person answered; else whether they heard > 2 s of silence from the agent.

    Exact with ``agent_first_spoke_at``. Reports without it fall back to the turns: their
    times count from the recording's start, or from the answer when nothing was recorded
    (the agent's rule), so the first agent turn's start is the silence after the answer.
    With a recording started after the greeting that reads as no silence: an undercount
    that ends once the agent fills ``agent_first_spoke_at``.
    """
    if report.answered_at is None or report.outcome is CallOutcome.VOICEMAIL:
        return None
    if report.agent_first_spoke_at is not None:
        return (report.agent_first_spoke_at - report.answered_at).total_seconds() > ABANDON_AFTER_S
    agent_starts = [t.start for t in report.turns if t.speaker is Speaker.AGENT]
    if not agent_starts:
        return True
    return min(agent_starts) > ABANDON_AFTER_S


def find_report(read: ReadReport, call_id: str) -> SessionReport | None:
    """The call's report at the one path its id names; None until it lands."""
    raw = read(report_path(call_id))
    return None if raw is None else parse_report(raw)


def sweep_outcomes(store: DialStore, read: ReadReport, now: datetime, max_call_duration: timedelta) -> OutcomeSweep:
    """Close every dispatched (or unconfirmed) attempt whose report has landed; time out the
    ones that never report, or whose report cannot be read."""
    sweep = OutcomeSweep()
    # ENDED: LiveKit's room_finished freed the slot (orchestration/defs/webhooks); the report still closes it.
    for attempt in store.attempts([AttemptStatus.DISPATCHED, AttemptStatus.SENDING, AttemptStatus.ENDED]):
        problem = "no session report"
        try:
            report = find_report(read, attempt.call_id)
        except (ValidationError, ValueError) as e:
            sweep.unreadable.append(f"{attempt.call_id}: {e}")
            report, problem = None, f"session report unreadable ({str(e)[:200]})"
        if report is None:
            started = attempt.dispatched_at or attempt.reserved_at
            if started + max_call_duration < now:
                # Frees the call slot; counted as failed so the contact is retried after backoff.
                store.close_attempt(
                    attempt.call_id, CallOutcome.FAILED, now, note=f"{problem} within {max_call_duration}"
                )
                sweep.timed_out.append(attempt.call_id)
            continue
        apply_report(store, report, now, sweep)
    return sweep


CALLBACK_MARK = "callback"


def callback_prefix(campaign_id: str) -> str:
    return f"{CALLBACK_MARK}/{campaign_id}/"


def callback_mark(campaign_id: str, contact_id: str, attempt_number: int) -> str:
    """The ledger mark of a callback the contact asked for on attempt ``attempt_number``: its time
    is when the next attempt may dial (the planner reads it, inside the calling window)."""
    return f"{callback_prefix(campaign_id)}{contact_id}/{attempt_number}"


def parse_callback_mark(name: str, campaign_id: str) -> tuple[str, int] | None:
    """(contact id, attempt number) of a callback mark of this campaign; None for another's."""
    prefix = callback_prefix(campaign_id)
    if not name.startswith(prefix):
        return None
    contact_id, _, number = name[len(prefix) :].rpartition("/")
    return (contact_id, int(number)) if contact_id and number.isdigit() else None


def callback_due(report: SessionReport) -> datetime | None:
    """When the caller asked to be called back; 'asap' is the end of the call."""
    if report.callback_requested is None:
        return None
    return report.ended_at if report.callback_requested == "asap" else report.callback_requested


def apply_report(store: DialStore, report: SessionReport, now: datetime, sweep: OutcomeSweep | None = None) -> bool:
    """Close the attempt a report belongs to, feed a DNC request into suppression and schedule a
    callback the caller accepted (never for a number that asked not to be called)."""
    attempt = store.attempt_by_call(report.call_id)
    if attempt is None:
        if callback_due(report) is not None:
            # an inbound caller: no campaign to dial from; the report and the call index keep it
            log.warning("a callback was requested on %s, which no campaign dialled: not scheduled", report.call_id)
        return False
    outcome = report.outcome
    if outcome is CallOutcome.FAILED and report.sip_status_code is not None:
        # A generic failure with a telling SIP status (486 busy, 480 no answer, 404 wrong number)
        # gets that status's outcome, and so its own retry policy.
        specific = outcome_for_sip_status(report.sip_status_code)
        if specific is not CallOutcome.ANSWERED:
            outcome = specific
    dnc = report.do_not_call_requested or outcome is CallOutcome.DO_NOT_CALL
    if dnc:
        store.add_do_not_call(
            [attempt.phone_number], "call", now, campaign_id=attempt.campaign_id, call_id=report.call_id
        )
    closed = store.close_attempt(
        report.call_id,
        outcome,
        report.ended_at,
        sip_status_code=report.sip_status_code,
        abandoned=is_abandoned(report),
        note="do-not-call requested during the call" if dnc else None,
    )
    due = callback_due(report)
    if closed and due is not None and not dnc:
        store.set_mark(callback_mark(attempt.campaign_id, attempt.contact_id, attempt.attempt_number), due)
        if sweep is not None:
            sweep.callbacks.append(report.call_id)
    if sweep is not None:
        if closed:
            sweep.closed[outcome.value] += 1
        if dnc:
            sweep.do_not_call.append(attempt.phone_number)
    return closed


def apply_do_not_call_request(store: DialStore, raw: bytes | None, now: datetime) -> str | None:
    """Suppress the number of a request written when it was heard (callcenter/do_not_call.py),
    before the call's report, or without one (an agent that crashed). Returns the number."""
    if raw is None:
        return None
    try:
        request = DoNotCallRequest.model_validate_json(raw)
    except ValidationError as e:
        # Never silently: the request's number stays unsuppressed until someone reads this.
        log.error("an unreadable do-not-call request was skipped: %s", "; ".join(str(x["loc"]) for x in e.errors()))
        return None
    attempt = store.attempt_by_call(request.call_id)
    if attempt is not None:
        number, campaign_id = attempt.phone_number, attempt.campaign_id
    elif request.from_number:
        number = normalise_number(request.from_number, "US")[0] or request.from_number
        campaign_id = None
    else:
        log.error("a do-not-call request of %s names no number and no attempt of ours", request.call_id)
        return None
    store.add_do_not_call([number], "call", now, campaign_id=campaign_id, call_id=request.call_id)
    return number


# (prefix, start_offset) -> the objects under it, listed from the offset (``Recordings.list_objects``).
ListReports = Callable[[str, str], Iterable[ListedObject]]
INBOUND_DNC_MARK = "inbound_do_not_call"


def sweep_inbound_do_not_call(
    store: DialStore,
    list_reports: ListReports,
    read: ReadReport,
    now: datetime,
    max_call_duration: timedelta,
    first_lookback: timedelta = timedelta(days=1),
) -> list[str]:
    """Callers who asked on an inbound call not to be called: no attempt of ours carries their
    report, so it is found by listing the bucket (the shared lister and cursor rule; the mark is
    the watermark). Reports at the watermark may be read again: adding a number twice is
    harmless. An outbound report listed here closes its attempt if it is still open (a report
    filed under another day than its id's, by an agent from before the path rule, is found so)."""
    cursor = ReportCursor(since=store.mark(INBOUND_DNC_MARK) or now - first_lookback)
    listing = list_calls(list_reports, cursor.since, now, max_call_duration)
    watched = [(obj, obj.name) for obj in (*listing.reports.values(), *listing.do_not_call)]
    new, advanced = cursor.advance(watched, now)
    added: list[str] = []
    for _, name in new:
        if name.endswith("/" + DO_NOT_CALL_FILENAME):
            if number := apply_do_not_call_request(store, read(name), now):
                added.append(number)
            continue
        raw = read(name)
        try:
            report = parse_report(raw) if raw is not None else None
        except (ValidationError, ValueError):
            continue  # postcall reports it; an outbound call's DNC comes from its attempt
        if report is None:
            continue
        if report.direction is CallDirection.OUTBOUND:
            apply_report(store, report, now)
            continue
        if not report.from_number:
            continue
        if report.do_not_call_requested or report.outcome is CallOutcome.DO_NOT_CALL:
            # As contact lists store numbers (E.164); as given when no list could hold it.
            number = normalise_number(report.from_number, "US")[0] or report.from_number
            store.add_do_not_call([number], "call", now, call_id=report.call_id)
            added.append(number)
    store.set_mark(INBOUND_DNC_MARK, advanced.since)
    return added
