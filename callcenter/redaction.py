"""Redaction of payment and identity data from call transcripts.

Runs before a transcript is indexed, sent to an LLM or logged, and again over what the LLM
writes. Callers speak numbers as words ("four one one one ...", "forty one eleven") and STT
writes them either way ("4111 1111 ...", "4-1-1-1"), so numbers are recognised token by
token: digits and number words both count, and separators or fillers ("um", "okay",
"mm-hmm") may sit between the groups of one number. What is redacted:

- card numbers: 13-19 digits passing the Luhn check, also when read as groups split by a
  pause, a filler, an interruption or the other speaker's turn, and any later read-back of part
  of one; 8-19 digits answering a card question (STT lost a digit or four); by default, any other
  13+ digit number, said at once or in groups of three or more digits (a card STT misheard);
- CVV/CVC: 3-4 digits near a security-code keyword, "the back" of the card or its signature
  strip, or soon after a card;
- expiry dates: near "exp"/"expires"/"valid thru" (month names included), or soon after a card;
- SSNs: ``ddd-dd-dddd``, any 9-digit number (said in one breath, however long after the
  question), or 5-10 digits near a social-security keyword (STT loses digits too), and any later
  read-back of part of one;
- configurable patterns: any regex, with its own label.

Wrongly redacting a phone number is cheap; leaking a card is not: where in doubt, redact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

_UNITS = {
    "zero": 0,
    "oh": 0,
    "o": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
}
_TEENS = {
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 2,
    "thirty": 3,
    "forty": 4,
    "fourty": 4,
    "fifty": 5,
    "sixty": 6,
    "seventy": 7,
    "eighty": 8,
    "ninety": 9,
}
_REPEATS = {"double": 2, "triple": 3}
_MONTHS = {
    "january",
    "jan",
    "february",
    "feb",
    "march",
    "mar",
    "april",
    "apr",
    "may",
    "june",
    "jun",
    "july",
    "jul",
    "august",
    "aug",
    "september",
    "sept",
    "sep",
    "october",
    "oct",
    "november",
    "nov",
    "december",
    "dec",
}
# Tokens that may sit between the digits of one spoken number.
_SEPARATORS = {"-", ",", ".", "dash", "–", "—", "/", "slash", "'", "’"}
# Words a caller (or STT) puts between the groups of a number read out: they do not end it.
_FILLERS = {
    "um",
    "umm",
    "uh",
    "uhh",
    "uhm",
    "er",
    "erm",
    "ah",
    "hmm",
    "hm",
    "mm",
    "mmm",
    "mhm",
    "mmhm",
    "okay",
    "ok",
    "k",
    "yeah",
    "yep",
    "yes",
    "right",
    "alright",
    "sure",
    "and",
    "then",
    "so",
    "it",
    "s",
    "that",
    "got",
    "next",
    "is",
}
_MAX_GAP = 4  # separator/filler tokens bridged inside one number
_CVV_KEYWORDS = {"cvv", "cvc", "cvv2", "cvc2", "csc", "cid", "security", "verification", "signature"}
_CARD_KEYWORDS = {"card", "visa", "mastercard", "amex", "discover", "debit", "credit"}
_SSN_KEYWORDS = {"social", "ssn"}
_EXPIRY_KEYWORDS = {"exp", "expiry", "expires", "expire", "expiration", "expiring", "expired"}
_KEYWORD_WINDOW = 8  # tokens between a keyword and the number it introduces
_CVV_WINDOW = 16  # "and the three digits on the back of the card?" ... "hang on" ... "seven three one"
_AFTER_CARD_WINDOW = 60  # a CVV or expiry asked for right after the card, with no keyword at all
_SPLIT_GAP = 24  # tokens between two groups of one card read with an interruption ("sorry, my dog ...") between
_BARRIER = "|"  # joins two speakers' turns: no number runs through it

_TOKEN_RE = re.compile(r"[A-Za-z]+|\d+|[^\sA-Za-z\d]")
_SSN_RE = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")

CARD_LABEL = "[REDACTED CARD]"
CVV_LABEL = "[REDACTED CVV]"
EXPIRY_LABEL = "[REDACTED EXPIRY]"
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
    expiry: bool = True
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
    """A word, digit group or punctuation mark; a spoken number ("forty one") is one token."""

    text: str
    start: int
    end: int
    value: str | None = None  # the digits it stands for

    @property
    def lower(self) -> str:
        return self.text.lower()

    @property
    def is_gap(self) -> bool:
        return self.lower in _SEPARATORS or self.lower in _FILLERS


@dataclass(frozen=True)
class _Run:
    """A spoken or written number: consecutive digit tokens (separators and fillers allowed between)."""

    tokens: tuple[_Token, ...]
    first_index: int  # index of the first token in the token list
    last_index: int

    @property
    def digits(self) -> str:
        return "".join(t.value or "" for t in self.tokens)


def _below_hundred(words: Sequence[str], i: int) -> tuple[int | None, int]:
    """A number 1-99 spoken from ``words[i]``: (value, next index) or (None, i)."""
    if i >= len(words):
        return None, i
    w = words[i]
    if w in _TEENS:
        return _TEENS[w], i + 1
    if w in _TENS:
        k = i + 1
        if k + 1 < len(words) and words[k] == "-" and words[k + 1] in _UNITS and _UNITS[words[k + 1]]:
            k += 1
        if k < len(words) and words[k] in _UNITS and _UNITS[words[k]] and words[k] not in ("o", "oh"):
            return _TENS[w] * 10 + _UNITS[words[k]], k + 1
        return _TENS[w] * 10, i + 1
    if w in _UNITS and _UNITS[w] and w not in ("o", "oh"):
        return _UNITS[w], i + 1
    return None, i


def _below_thousand(words: Sequence[str], i: int) -> tuple[int | None, int]:
    if i + 1 < len(words) and words[i] in _UNITS and _UNITS[words[i]] and words[i + 1] == "hundred":
        k = i + 2
        if k < len(words) and words[k] == "and":
            k += 1
        rest, after = _below_hundred(words, k)
        if rest is not None:
            return _UNITS[words[i]] * 100 + rest, after
        return _UNITS[words[i]] * 100, i + 2
    return _below_hundred(words, i)


def _number_at(words: Sequence[str], i: int) -> tuple[str | None, int]:
    """The digits a number starting at ``words[i]`` stands for, and the index after it."""
    w = words[i]
    if w.isdigit():
        return w, i + 1
    if w in _REPEATS and i + 1 < len(words):
        nxt = words[i + 1]
        digit = nxt if (nxt.isdigit() and len(nxt) == 1) else (str(_UNITS[nxt]) if nxt in _UNITS else None)
        if digit is not None:
            return digit * _REPEATS[w], i + 2
    if w in _UNITS and i + 1 < len(words) and words[i + 1] == "thousand":
        rest, after = _below_thousand(words, i + 2)
        return f"{_UNITS[w]}{rest or 0:03d}", (after if rest is not None else i + 2)
    if w in _UNITS and i + 1 < len(words) and words[i + 1] == "hundred":
        value, after = _below_thousand(words, i)
        return str(value), after
    if w in _UNITS:
        return str(_UNITS[w]), i + 1
    value, after = _below_hundred(words, i)
    return (None, i) if value is None else (str(value), after)


def _tokens(text: str) -> list[_Token]:
    raw = list(_TOKEN_RE.finditer(text))
    words = [m.group().lower() for m in raw]
    tokens: list[_Token] = []
    i = 0
    while i < len(raw):
        value, after = _number_at(words, i)
        if value is None:
            tokens.append(_Token(raw[i].group(), raw[i].start(), raw[i].end()))
            i += 1
        else:
            start, end = raw[i].start(), raw[after - 1].end()
            tokens.append(_Token(text[start:end], start, end, value))
            i = after
    return tokens


def _number_runs(tokens: Sequence[_Token]) -> list[_Run]:
    runs: list[_Run] = []
    i = 0
    while i < len(tokens):
        if tokens[i].value is None:
            i += 1
            continue
        members = [i]
        j = i + 1
        while j < len(tokens):
            if tokens[j].value is not None:
                members.append(j)
                j += 1
                continue
            k = j
            while k < len(tokens) and k - j < _MAX_GAP and tokens[k].value is None and tokens[k].is_gap:
                k += 1
            if k > j and k < len(tokens) and tokens[k].value is not None:
                j = k
                continue
            break
        only = tokens[members[0]]
        # A lone spoken digit ("that one", "oh well", "at two") is a word, not a number.
        if not (len(members) == 1 and not only.text.isdigit() and len(only.value or "") == 1):
            runs.append(_Run(tuple(tokens[m] for m in members), i, members[-1]))
        i = j
    return runs


def _keyword_before(tokens: Sequence[_Token], index: int, window: int, keywords: set[str]) -> bool:
    return any(t.lower in keywords for t in tokens[max(0, index - window) : index])


def _back_of_card_before(tokens: Sequence[_Token], index: int, window: int) -> bool:
    """ "the digits on the back", "the back of your card": a CVV question with no keyword."""
    lo = max(0, index - window)
    for k in range(lo, index):
        if tokens[k].lower == "back" and (
            (k > 0 and tokens[k - 1].lower == "the") or (k + 1 < len(tokens) and tokens[k + 1].lower == "of")
        ):
            return True
    return False


def _other_speakers_last_turn(tokens: Sequence[_Token], index: int) -> tuple[int, int] | None:
    """(start, end) token indexes of the other speaker's turn this answer follows: a question
    asked there ("the three digits on the back?") governs the whole answer, however long."""
    barriers = [k for k in range(index - 1, -1, -1) if tokens[k].text == _BARRIER][:2]
    if not barriers:
        return None
    return (barriers[1] + 1 if len(barriers) > 1 else 0), barriers[0]


def _expiry_before(tokens: Sequence[_Token], index: int, window: int = _KEYWORD_WINDOW) -> bool:
    lo = max(0, index - window)
    for k in range(lo, index):
        t = tokens[k].lower
        if t in _EXPIRY_KEYWORDS:
            return True
        if t in ("thru", "through") and k > 0 and tokens[k - 1].lower in ("valid", "good"):
            return True
    return False


def _ssn_keyword(tokens: Sequence[_Token], index: int, window: int) -> bool:
    return _keyword_before(tokens, index, window, _SSN_KEYWORDS)


def _card_keyword(tokens: Sequence[_Token], index: int, window: int) -> bool:
    return _keyword_before(tokens, index, window, _CARD_KEYWORDS)


def _cvv_keyword(tokens: Sequence[_Token], index: int, window: int) -> bool:
    return _keyword_before(tokens, index, window, _CVV_KEYWORDS) or _back_of_card_before(tokens, index, window)


def _in_context(
    tokens: Sequence[_Token], index: int, window: int, said: Callable[[Sequence[_Token], int, int], bool]
) -> bool:
    """Said within ``window`` tokens before ``index``, or anywhere in the question it answers."""
    if said(tokens, index, window):
        return True
    asked = _other_speakers_last_turn(tokens, index)
    return asked is not None and said(tokens, asked[1], asked[1] - asked[0])


def _month_start(tokens: Sequence[_Token], index: int) -> int | None:
    """Index of a month name just before ``index`` ("December twenty eight", "Dec. 28")."""
    for k in (index - 1, index - 2):
        if k < 0:
            return None
        if tokens[k].lower in _MONTHS:
            return k
        if not tokens[k].is_gap and tokens[k].lower != "of":
            return None
    return None


def _card_window(tokens: Sequence[_Token]) -> tuple[int, int] | None:
    """The longest token-aligned slice of ``tokens`` holding a Luhn-valid 13-19 digit number."""
    best: tuple[int, int] | None = None
    best_len = 0
    n = len(tokens)
    for a in range(n):
        digits = ""
        for b in range(a, n):
            digits += tokens[b].value or ""
            if len(digits) > 19:
                break
            if len(digits) >= 13 and len(digits) > best_len and luhn_valid(digits):
                best, best_len = (a, b), len(digits)
    return best


def _looks_like_expiry(run: _Run) -> bool:
    """MMYY or MMYYYY, or M/YY written with a slash."""
    d = run.digits
    if len(d) == 3:
        return any(t.lower in ("/", "slash") for t in run.tokens)
    return len(d) in (4, 6) and 1 <= int(d[:2]) <= 12


def _classify(tokens: Sequence[_Token], runs: list[_Run], policy: RedactionPolicy) -> dict[int, str]:
    labels: dict[int, str] = {}
    for i, run in enumerate(runs):
        n = len(run.digits)
        if policy.cards and _card_window(run.tokens):
            labels[i] = CARD_LABEL
        elif policy.long_numbers and n >= 13:
            labels[i] = NUMBER_LABEL
        elif (
            policy.cards
            and 8 <= n <= 19
            and not (policy.ssn and (n == 9 or _in_context(tokens, run.first_index, 12, _ssn_keyword)))
            and _in_context(tokens, run.first_index, _KEYWORD_WINDOW, _card_keyword)
        ):
            labels[i] = CARD_LABEL  # the answer to "the card number?" with digits STT lost or misheard
    if policy.cards:
        _split_cards(tokens, runs, labels, policy.long_numbers)

    card_runs = [runs[i] for i, label in labels.items() if label == CARD_LABEL]
    for i, run in enumerate(runs):
        if i in labels:
            continue
        n = len(run.digits)
        at = run.first_index
        # 5-8 digits near the keyword: an SSN that STT lost digits of ("three three oh five" -> "3, 3, or 5")
        if policy.ssn and (n == 9 or (5 <= n <= 10 and _in_context(tokens, at, 12, _ssn_keyword))):
            labels[i] = SSN_LABEL
        elif policy.expiry and 2 <= n <= 8 and _in_context(tokens, at, _KEYWORD_WINDOW, _expiry_before):
            labels[i] = EXPIRY_LABEL
        elif policy.cvv and n in (3, 4) and _in_context(tokens, at, _CVV_WINDOW, _cvv_keyword):
            labels[i] = CVV_LABEL
        elif 3 <= n <= 6 and any(0 < run.first_index - c.last_index <= _AFTER_CARD_WINDOW for c in card_runs):
            if policy.expiry and _looks_like_expiry(run):
                labels[i] = EXPIRY_LABEL
            elif policy.cvv and n <= 4:
                labels[i] = CVV_LABEL

    # Read-backs: part of a card or SSN said again ("that's 4111 1111 1111, right?").
    said = {label: [runs[i].digits for i, lb in labels.items() if lb == label] for label in (CARD_LABEL, SSN_LABEL)}
    for i, run in enumerate(runs):
        if i in labels:
            continue
        if len(run.digits) >= 5 and any(run.digits in d for d in said[CARD_LABEL]):
            labels[i] = CARD_LABEL
        elif len(run.digits) >= 4 and any(run.digits in d for d in said[SSN_LABEL]):
            labels[i] = SSN_LABEL
    return labels


def _split_cards(tokens: Sequence[_Token], runs: list[_Run], labels: dict[int, str], long_numbers: bool) -> None:
    """A card read as groups with an interruption ("sorry, where was I") between them; with
    ``long_numbers``, 13-19 digits in such groups of three or more digits even without Luhn (STT
    dropped or added a digit of the card: "one four eight eight" written "148")."""
    for a in range(len(runs)):
        if a in labels or len(runs[a].digits) < 3:
            continue
        joined: list[_Token] = list(runs[a].tokens)
        owner = [a] * len(joined)
        long_enough: set[int] = set()
        for b in range(a + 1, min(a + 6, len(runs))):
            prev, run = runs[b - 1], runs[b]
            gap = tokens[prev.last_index + 1 : run.first_index]
            if b in labels or len(run.digits) < 3 or len(gap) > _SPLIT_GAP or any(t.text == _BARRIER for t in gap):
                break
            joined += run.tokens
            owner += [b] * len(run.tokens)
            window = _card_window(joined)
            if window is not None:
                for r in set(owner[window[0] : window[1] + 1]):
                    labels[r] = CARD_LABEL
                long_enough = set()
                break
            total = sum(len(t.value or "") for t in joined)
            if 13 <= total <= 19:
                long_enough = set(owner)
            if total > 40:
                break
        if long_numbers:
            for r in long_enough:
                labels[r] = NUMBER_LABEL


def _spans(text: str, policy: RedactionPolicy) -> list[tuple[int, int, str]]:
    tokens = _tokens(text)
    runs = _number_runs(tokens)
    spans: list[tuple[int, int, str]] = []
    for i, label in _classify(tokens, runs, policy).items():
        run = runs[i]
        start = run.tokens[0].start
        if label == EXPIRY_LABEL and (month := _month_start(tokens, run.first_index)) is not None:
            start = tokens[month].start
        spans.append((start, run.tokens[-1].end, label))
    if policy.ssn:
        spans.extend((m.start(), m.end(), SSN_LABEL) for m in _SSN_RE.finditer(text))
    for pattern in policy.patterns:
        label = f"[REDACTED {pattern.label.upper()}]"
        spans.extend((m.start(), m.end(), label) for m in pattern.compiled().finditer(text) if m.end() > m.start())
    return spans


def redact(text: str, policy: RedactionPolicy | None = None) -> Redacted:
    return _apply(text, _spans(text, policy or RedactionPolicy()))


def redact_value(name: str, value: str, policy: RedactionPolicy | None = None) -> str:
    """Redact one named value (an extracted field): its name is the context a bare "731"
    or "12/28" lacks ("card_cvv", "expiry_date")."""
    context = re.sub(r"[_\-.]+", " ", name) + ": "
    text = context + value
    offset = len(context)
    pieces, cursor = [], offset
    for start, end, label in _merge(_spans(text, policy or RedactionPolicy())):
        if end <= offset:
            continue
        pieces += [text[cursor : max(start, offset)], label]
        cursor = max(cursor, end)
    pieces.append(text[cursor:])
    return "".join(pieces)


@dataclass
class RedactedTurns:
    texts: list[str]  # one per turn, in order
    count: int = 0
    labels: list[str] = field(default_factory=list)


def redact_conversation(turns: Sequence[tuple[str, str]], policy: RedactionPolicy | None = None) -> RedactedTurns:
    """Redact a conversation's ``(speaker, text)`` turns, in order, as one conversation.

    Turn by turn, "4111 1111" / "1111 1111" (one caller, a pause between) is two short
    numbers, "seven three one" answering the agent's "the security code on the back?" has no
    keyword near it, and "4111" / "okay" / "1111" ... (the agent acknowledging each group)
    is four. So the turns are read twice: as one text, where keywords count across turns but
    a number does not run into the other speaker's turn (a barrier token sits between
    them), and as each speaker's own turns joined, where a number runs on over whatever the
    other speaker said between its groups. Returns each turn's redacted text and the count:
    one per number, however many turns it spans.
    """
    policy = policy or RedactionPolicy()
    texts = [text for _, text in turns]
    pieces: list[tuple[int, int, int, str, int]] = []  # (turn, start, end, label, origin)
    origins = 0

    def scan(layout: list[tuple[int, str]]) -> None:
        """Redact turns joined by the separators in ``layout``: (turn index, separator before it)."""
        nonlocal origins
        parts, offsets, pos = [], [], 0
        for turn, sep in layout:
            parts.append(sep)
            pos += len(sep)
            offsets.append((turn, pos))
            parts.append(texts[turn])
            pos += len(texts[turn])
        joined = "".join(parts)
        for start, end, label in _spans(joined, policy):
            for turn, at in offsets:
                a, b = max(start, at), min(end, at + len(texts[turn]))
                if a < b:
                    pieces.append((turn, a - at, b - at, label, origins))
            origins += 1

    layout, previous = [], None
    for i, (speaker, _) in enumerate(turns):
        layout.append((i, "" if i == 0 else (" " if speaker == previous else f" {_BARRIER} ")))
        previous = speaker
    scan(layout)
    for speaker in dict.fromkeys(s for s, _ in turns):
        own = [i for i, (s, _) in enumerate(turns) if s == speaker]
        if len(own) > 1 and len(own) < len(turns):  # one speaker's turns alone read differently
            scan([(i, "" if k == 0 else " ") for k, i in enumerate(own)])

    # One redaction per number: pieces of one origin, or overlapping ones, are one.
    parent = list(range(origins))

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    out, first_label = [], {}
    for turn, text in enumerate(texts):
        merged: list[list] = []  # [start, end, label, origin]
        for _, start, end, label, origin in sorted(p for p in pieces if p[0] == turn):
            if merged and start < merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
                parent[root(origin)] = root(merged[-1][3])
            else:
                merged.append([start, end, label, origin])
        chunks, cursor = [], 0
        for start, end, label, origin in merged:
            chunks += [text[cursor:start], label]
            cursor = end
            first_label.setdefault(origin, label)
        chunks.append(text[cursor:])
        out.append("".join(chunks))
    roots: dict[int, str] = {}
    for origin, label in first_label.items():
        roots.setdefault(root(origin), label)
    return RedactedTurns(texts=out, count=len(roots), labels=list(roots.values()))


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
