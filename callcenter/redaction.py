"""Redaction of payment and identity data from call transcripts.

Runs before a transcript is indexed, sent to an LLM or logged. Callers speak numbers as
words ("four one one one ...") and STT writes them either way ("4111 1111 ..."), so numbers
are recognised token by token: digits and number words both count, separators in between
are allowed. What is redacted:

- card numbers: 13-19 digits passing the Luhn check (and, by default, any other 13+ digit number);
- CVV/CVC: 3-4 digits near a security-code keyword;
- SSNs: ``ddd-dd-dddd``, or 9 digits near a social-security keyword;
- configurable patterns: any regex, with its own label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

_NUMBER_WORDS = {
    "zero": "0",
    "oh": "0",
    "o": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
}
# Tokens that may sit between the digits of one spoken number.
_SEPARATORS = {"-", ",", ".", "dash", "–"}
_CVV_KEYWORDS = {"cvv", "cvc", "cvv2", "csc", "security", "verification"}
_SSN_KEYWORDS = {"social", "ssn"}
_KEYWORD_WINDOW = 8  # tokens between a keyword and the number it introduces

_TOKEN_RE = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")
_SSN_RE = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")

CARD_LABEL = "[REDACTED CARD]"
CVV_LABEL = "[REDACTED CVV]"
SSN_LABEL = "[REDACTED SSN]"
NUMBER_LABEL = "[REDACTED NUMBER]"


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class RedactionPattern:
    label: str
    regex: str

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.regex, re.IGNORECASE)


@dataclass(frozen=True)
class RedactionPolicy:
    """What to redact. ``patterns`` are extra regexes (e.g. member ids) replaced by ``[REDACTED <LABEL>]``."""

    cards: bool = True
    cvv: bool = True
    ssn: bool = True
    # 13+ digit numbers that fail Luhn (a misheard card, an account number): phone numbers are shorter.
    long_numbers: bool = True
    patterns: tuple[RedactionPattern, ...] = ()


@dataclass
class Redacted:
    text: str
    count: int = 0
    labels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Token:
    text: str
    start: int
    end: int

    @property
    def digits(self) -> str | None:
        if self.text.isdigit():
            return self.text
        return _NUMBER_WORDS.get(self.text.lower())

    @property
    def is_separator(self) -> bool:
        return self.text.lower() in _SEPARATORS


@dataclass(frozen=True)
class _Run:
    """A spoken or written number: consecutive digit tokens (separators allowed between)."""

    tokens: tuple[_Token, ...]
    first_index: int  # index of the first token in the token list

    @property
    def digits(self) -> str:
        return "".join(t.digits or "" for t in self.tokens)


def _number_runs(tokens: Sequence[_Token]) -> list[_Run]:
    runs: list[_Run] = []
    i = 0
    while i < len(tokens):
        if tokens[i].digits is None:
            i += 1
            continue
        start = i
        members = [tokens[i]]
        j = i + 1
        while j < len(tokens):
            if tokens[j].digits is not None:
                members.append(tokens[j])
                j += 1
            elif tokens[j].is_separator and j + 1 < len(tokens) and tokens[j + 1].digits is not None:
                j += 1
            else:
                break
        # A lone "o"/"oh" is a word, not a number.
        if not (len(members) == 1 and not members[0].text.isdigit()):
            runs.append(_Run(tuple(members), start))
        i = j
    return runs


def _near_keyword(tokens: Sequence[_Token], index: int, keywords: set[str]) -> bool:
    window = tokens[max(0, index - _KEYWORD_WINDOW) : index]
    return any(t.text.lower() in keywords for t in window)


def _card_window(run: _Run) -> tuple[int, int] | None:
    """The longest token-aligned slice of ``run`` holding a Luhn-valid 13-19 digit number."""
    best: tuple[int, int] | None = None
    best_len = 0
    n = len(run.tokens)
    for a in range(n):
        digits = ""
        for b in range(a, n):
            digits += run.tokens[b].digits or ""
            if len(digits) > 19:
                break
            if len(digits) >= 13 and len(digits) > best_len and luhn_valid(digits):
                best, best_len = (a, b), len(digits)
    return best


def redact(text: str, policy: RedactionPolicy | None = None) -> Redacted:
    return _apply(text, _spans(text, policy or RedactionPolicy()))


@dataclass
class RedactedTurns:
    texts: list[str]  # one per turn, in order
    count: int = 0
    labels: list[str] = field(default_factory=list)


def redact_conversation(turns: Sequence[tuple[str, str]], policy: RedactionPolicy | None = None) -> RedactedTurns:
    """Redact a conversation's ``(speaker, text)`` turns, in order, as one text.

    Turn by turn, "4111 1111" / "1111 1111 1111" (one caller, a pause between) is two short
    numbers, and "seven three one" answering the agent's "the security code on the back?" has
    no keyword near it. Here a number runs on across consecutive turns of one speaker (not into
    another speaker's: a barrier token sits between them), and keywords count across turns.
    Returns each turn's redacted text and the count.
    """
    parts: list[str] = []
    bounds: list[tuple[int, int]] = []
    pos, previous = 0, None
    for speaker, text in turns:
        if parts:
            sep = " " if speaker == previous else " | "
            parts.append(sep)
            pos += len(sep)
        bounds.append((pos, pos + len(text)))
        parts.append(text)
        pos += len(text)
        previous = speaker
    joined = "".join(parts)
    merged = _merge(_spans(joined, policy or RedactionPolicy()))
    texts = []
    for a, b in bounds:
        pieces, cursor = [], a
        for start, end, label in merged:
            if end <= a or start >= b:
                continue
            pieces += [joined[cursor : max(start, a)], label]
            cursor = min(end, b)
        pieces.append(joined[cursor:b])
        texts.append("".join(pieces))
    return RedactedTurns(texts=texts, count=len(merged), labels=[m[2] for m in merged])


def _spans(text: str, policy: RedactionPolicy) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    tokens = [_Token(m.group(), m.start(), m.end()) for m in _TOKEN_RE.finditer(text)]
    for run in _number_runs(tokens):
        digits = run.digits
        if policy.cards and _card_window(run):
            # The whole spoken number goes: STT often repeats or splits digits around the card.
            spans.append((run.tokens[0].start, run.tokens[-1].end, CARD_LABEL))
        elif policy.long_numbers and len(digits) >= 13:
            spans.append((run.tokens[0].start, run.tokens[-1].end, NUMBER_LABEL))
        elif policy.ssn and len(digits) == 9 and _near_keyword(tokens, run.first_index, _SSN_KEYWORDS):
            spans.append((run.tokens[0].start, run.tokens[-1].end, SSN_LABEL))
        elif policy.cvv and len(digits) in (3, 4) and _near_keyword(tokens, run.first_index, _CVV_KEYWORDS):
            spans.append((run.tokens[0].start, run.tokens[-1].end, CVV_LABEL))
    if policy.ssn:
        spans.extend((m.start(), m.end(), SSN_LABEL) for m in _SSN_RE.finditer(text))
    for pattern in policy.patterns:
        label = f"[REDACTED {pattern.label.upper()}]"
        spans.extend((m.start(), m.end(), label) for m in pattern.compiled().finditer(text) if m.end() > m.start())
    return spans


def _merge(spans: Iterable[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    merged: list[tuple[int, int, str]] = []
    for start, end, label in sorted(spans):
        if merged and start < merged[-1][1]:  # overlapping: keep one redaction covering both
            prev = merged[-1]
            merged[-1] = (prev[0], max(prev[1], end), prev[2])
        else:
            merged.append((start, end, label))
    return merged


def _apply(text: str, spans: Iterable[tuple[int, int, str]]) -> Redacted:
    merged = _merge(spans)
    out: list[str] = []
    pos = 0
    for start, end, label in merged:
        out.append(text[pos:start])
        out.append(label)
        pos = end
    out.append(text[pos:])
    return Redacted(text="".join(out), count=len(merged), labels=[m[2] for m in merged])
