"""The extractive analysis: the same ``CallAnalysis`` the LLM fills, filled by rules, no model.

For a stack whose model cannot write an analysis an analyst can use (the local stack's
SmolLM2-135M: docs/benchmarks.md). Every field comes from the call's redacted transcript, the one
post-call stores, so nothing here can carry what redaction removed; the analysis is labelled
``analyser="extractive"`` wherever it shows (the index row, the call browser, webhooks):

- summary: the caller's own stated reason and the agent's last substantive sentence (the outcome),
  quoted with who said them in the order they were said, and the caller's last words when they came
  after that outcome;
- sentiment: VADER's lexicon (vaderSentiment) over the caller's sentences, courtesy formulas
  ("thanks", "bye", "have a nice day") and request forms ("I'd like to", "please") left out;
- follow-up: the agent promising a call ("someone will call you back") or the caller asking for
  one ("call me back", "can you text it again?"); none after a do-not-call request;
- do-not-call: the shared rules (callcenter/do_not_call.py) over the conversation;
- extracted fields: a campaign's ``*_time``/``*_date`` fields where a time is said next to what the
  field names (``appointment_time``: a booking; ``callback_time``: a call back); others stay null;
- goal_achieved stays null: no rule reads a campaign's goal.

The rules were written before they were measured on the evaluation set, and not tuned on it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache

from callcenter.do_not_call import conversation_asks_not_to_be_called
from callcenter.record import EXTRACTIVE_ANALYSER, CallAnalysis, Sentiment
from callcenter.report import Speaker, Turn

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORDS = re.compile(r"[a-z0-9']+")
# Rituals that say nothing of how the caller feels ("Okay, thanks.", "Thank you, bye.", "Have a nice
# day."); "great" or "perfect" on their own are a reaction and count.
_COURTESY = re.compile(
    r"\b(?:thanks|thank you)(?: (?:so|very))?(?: much| a lot)?|\b(?:have a (?:nice|good|great|lovely) "
    r"(?:day|one|evening|weekend)|you too|no problem|good ?bye|bye|okay|ok|alright|all right|yes|yeah|hi|hello|sure)\b",
    re.IGNORECASE,
)
# How a request is put, not how the caller feels: VADER scores "like" in "I'd like to book" and
# "please" as positive, which would make every polite request a happy call.
_REQUEST_FORMS = re.compile(r"(?:\bwould|'d)\s+like\b|\bplease\b|\bwant(?:s|ed)?\b", re.IGNORECASE)
# Closings and acknowledgements: a sentence of only these states no reason and no outcome.
_FORMULA = frozenset(
    ["understood", "of", "course", "sorry", "i", "see", "got", "it", "noted", "perfect", "fine", "great", "good"]
    + ["this", "call", "may", "be", "recorded", "that's", "you're", "welcome"]
)
# What a caller says when stating why they called (or why they answer as they do).
_REASON_CUES = re.compile(
    r"\b(?:i'?d like|i would like|i want|i wanted|i need|i have to|i'm calling|i am calling|calling (?:about|to|for)"
    r"|can (?:i|you)|could (?:i|you)|do you|i got|i've|my|please|don'?t|never|stop|take me|no more)\b",
    re.IGNORECASE,
)
_FOLLOW_UP_PROMISE = re.compile(
    r"\b(?:will|'ll|going to|gonna)\s+(?:[\w'-]+\s+){0,5}?(?:call|phone|ring|contact|reach out|follow up|get back)\b",
    re.IGNORECASE,
)
_FOLLOW_UP_ASKED = re.compile(
    r"\b(?:call|phone|ring) (?:me|us) back\b|\b(?:can|could|would|will) you (?:please )?(?:call|phone|ring|text|email|send)\b"
    r"|\bcall my (?:cell|mobile|work|home|other)\b",
    re.IGNORECASE,
)
_NUMBER_WORD = r"(?:\d{1,2}(?::\d{2})?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|noon)"
_TIME = re.compile(
    r"\b(?:(?:next |this )?(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)|tomorrow|today|tonight"
    r"|this (?:morning|afternoon|evening|week)|next week)(?: (?:morning|afternoon|evening))?"
    rf"(?: at {_NUMBER_WORD}(?: ?(?:am|pm|a\.m\.|p\.m\.|o'clock))?)?"
    rf"|\b(?:at|before|after) {_NUMBER_WORD}(?: ?(?:am|pm|a\.m\.|p\.m\.|o'clock))?\b",
    re.IGNORECASE,
)
# What a field's first word is about, by the words that say it in a call.
_FIELD_TOPICS = {
    "appointment": re.compile(r"\b(?:book|booked|booking|appointment|scheduled?|all set|see you)\b", re.IGNORECASE),
    "callback": _FOLLOW_UP_ASKED,
}
_FIELD_TOPICS["call"] = _FIELD_TOPICS["callback"]
_MAX_QUOTE = 200


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _words(text: str) -> list[str]:
    return _WORDS.findall(text.lower())


def _courtesy_only(sentence: str) -> bool:
    return not _words(_COURTESY.sub(" ", sentence))


def _quote(sentence: str) -> str:
    return sentence if len(sentence) <= _MAX_QUOTE else sentence[: _MAX_QUOTE - 1].rstrip() + "…"


@cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def caller_sentiment(sentences: Iterable[str]) -> Sentiment:
    """VADER's compound score per sentence (its own cut-offs: >= 0.05 positive, <= -0.05 negative),
    courtesy formulas and request forms left out. Mixed when both sides weigh at least 0.5 in total, else the side
    that weighs more, else neutral."""
    positive = negative = 0.0
    for sentence in sentences:
        if _courtesy_only(sentence):
            continue
        score = _vader().polarity_scores(_REQUEST_FORMS.sub(" ", sentence))["compound"]
        if score >= 0.05:
            positive += score
        elif score <= -0.05:
            negative -= score
    if positive >= 0.5 and negative >= 0.5:
        return Sentiment.MIXED
    if positive - negative >= 0.05:
        return Sentiment.POSITIVE
    if negative - positive >= 0.05:
        return Sentiment.NEGATIVE
    return Sentiment.NEUTRAL


def _substantive(sentence: str) -> bool:
    words = _words(_COURTESY.sub(" ", sentence))
    return len(words) >= 3 and not all(w in _FORMULA for w in words)


def _field_value(name: str, said: Sequence[tuple[Speaker, str]]) -> str | None:
    """A time said next to what the field names (the first after its words in a sentence, else the
    nearest before), the last one said in the call (a booking moved is booked last)."""
    if not name.endswith(("_time", "_date")):
        return None
    topic = _FIELD_TOPICS.get(name.split("_", 1)[0])
    if topic is None:
        return None
    found = None
    for _, sentence in said:
        for about in topic.finditer(sentence):
            times = list(_TIME.finditer(sentence))
            after = [t for t in times if t.start() >= about.end()]
            before = [t for t in times if t.end() <= about.start()]
            if after or before:
                found = (after[0] if after else before[-1]).group(0)
    return found


def extractive_analysis(
    transcript: Sequence[Turn], goal: str | None = None, fields: tuple[str, ...] = ()
) -> CallAnalysis:
    """The analysis of one call from its redacted transcript (``TranscribedCall.transcript``)."""
    del goal  # no rule reads a campaign's goal: goal_achieved stays null
    said = [(t.speaker, s) for t in transcript for s in _sentences(t.text)]
    caller = [s for speaker, s in said if speaker is Speaker.CALLER]
    agent = [(i, s) for i, (speaker, s) in enumerate(said) if speaker is Speaker.AGENT]

    substantive = [(i, s) for i, (speaker, s) in enumerate(said) if speaker is Speaker.CALLER and _substantive(s)]
    reason_at, reason = next(
        ((i, s) for i, s in substantive if _REASON_CUES.search(s)), substantive[0] if substantive else (None, None)
    )
    outcome_at, outcome = next(((i, s) for i, s in reversed(agent) if _substantive(s)), (None, None))
    # the caller's last words, when they came after the outcome ("This is the second time. Fix it.")
    last_at, last_words = next(
        ((i, s) for i, s in reversed(substantive) if outcome_at is not None and i > outcome_at and i != reason_at),
        (None, None),
    )
    quoted = sorted(
        (i, speaker, sentence)
        for i, speaker, sentence in (
            (reason_at, "Caller", reason),
            (outcome_at, "Agent", outcome),
            (last_at, "Caller", last_words),
        )
        if sentence is not None
    )
    # in the order they were said: an outbound call's purpose stands before the caller's answer
    summary = " ".join(f'{speaker}: "{_quote(sentence)}"' for _, speaker, sentence in quoted)
    summary = summary or "Nothing in the transcript states a reason or an outcome."

    do_not_call = conversation_asks_not_to_be_called((t.speaker, t.text) for t in transcript)
    promises = [s for _, s in agent if _FOLLOW_UP_PROMISE.search(s)]
    asked = [s for s in caller if _FOLLOW_UP_ASKED.search(s)]
    follow_up = not do_not_call and bool(promises or asked)
    if do_not_call:
        disposition = "do_not_call"
    elif any("wrong number" in s.lower() for s in caller):
        disposition = "wrong_number"
    else:
        disposition = "follow_up" if follow_up else "no_follow_up"
    return CallAnalysis(
        summary=summary,
        disposition=disposition,
        sentiment=caller_sentiment(caller),
        customer_intent=_quote(reason) if reason else "not stated",
        action_items=[_quote(s) for s in (asked + promises)[:5]] if follow_up else [],
        follow_up_needed=follow_up,
        goal_achieved=None,
        do_not_call_requested=do_not_call,
        extracted_fields={name: _field_value(name, said) for name in fields},
        analyser=EXTRACTIVE_ANALYSER,
    )
