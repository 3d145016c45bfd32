"""What a labelled call must never show once redacted, in every form STT writes it.

A PII span is labelled by its digits as the caller reads them, group by group. From them come
its must-not-appear strings: the digits together, in their groups, one by one with spaces or
hyphens ("4-1-1-1"), as words one by one ("four one one one"), and as pairs of words ("forty one
eleven"); a label may add more (a month name). ``leaks`` also reads numbers back out of a text
(number words to digits, fillers between groups bridged) and looks for the span's groups in them:
an oracle of its own, not callcenter.redaction's reading, so the two can disagree.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

_DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_TEEN_WORDS = (
    "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen",
)  # fmt: skip
_TENS_WORDS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


class PiiKind(StrEnum):
    CARD = "card"
    CVV = "cvv"
    EXPIRY = "expiry"
    SSN = "ssn"


def _pair_words(pair: str) -> str:
    """A two-digit group as said in pairs: "41" -> "forty one", "03" -> "oh three"."""
    tens, unit = int(pair[0]), int(pair[1])
    if tens == 0:
        return f"oh {_DIGIT_WORDS[unit]}"
    if tens == 1:
        return _TEEN_WORDS[unit]
    return _TENS_WORDS[tens] + (f" {_DIGIT_WORDS[unit]}" if unit else "")


def _group_forms(group: str) -> set[str]:
    forms = {group, " ".join(group), "-".join(group)}
    words = [_DIGIT_WORDS[int(c)] for c in group]
    forms.add(" ".join(words))
    if "0" in group:
        forms.add(" ".join("oh" if c == "0" else w for c, w in zip(group, words, strict=True)))
    if len(group) == 4:
        forms.add(f"{group[:2]} {group[2:]}")
        forms.add(f"{_pair_words(group[:2])} {_pair_words(group[2:])}")
    return forms


@dataclass(frozen=True)
class PiiSpan:
    """One number the caller says: ``groups`` as read ("4539", "1488", ...); ``extra`` forms (a month)."""

    kind: PiiKind
    groups: tuple[str, ...]
    extra: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.groups or not all(g.isdigit() for g in self.groups):
            raise ValueError(f"a {self.kind} span's groups are digits: {self.groups!r}")

    @property
    def digits(self) -> str:
        return "".join(self.groups)

    @property
    def must_not_appear(self) -> tuple[str, ...]:
        """Every form STT may write it in, lower case; any of them in a redacted text is a leak."""
        forms = {self.digits, " ".join(self.groups), "-".join(self.groups), *(f.lower() for f in self.extra)}
        if len(self.groups) == 2 and all(len(g) == 2 for g in self.groups):  # an expiry: 12/28
            forms |= {"/".join(self.groups), f"{_pair_words(self.groups[0])} {_pair_words(self.groups[1])}"}
        for group in self.groups:
            if len(group) >= 3 or len(self.groups) == 1:
                forms |= _group_forms(group)
        return tuple(sorted(forms, key=lambda f: (-len(f), f)))

    @property
    def needles(self) -> tuple[str, ...]:
        """Digit strings looked for in the numbers read back out of a text: each group of three
        digits or more, and the whole span (an expiry's "1228")."""
        return tuple(dict.fromkeys([g for g in self.groups if len(g) >= 3] + [self.digits]))


def _normalize(text: str) -> str:
    return " " + re.sub(r"[^a-z0-9/]+", " ", text.lower()).strip() + " "


_WORD_VALUES = {w: str(i) for i, w in enumerate(_DIGIT_WORDS)} | {"oh": "0", "o": "0"}
_WORD_VALUES |= {w: str(10 + i) for i, w in enumerate(_TEEN_WORDS)}
_BRIDGE = {"um", "uh", "umm", "uhm", "er", "okay", "ok", "mm", "hmm", "mhm", "and", "dash"}


def _is_number(tokens: list[str], i: int) -> bool:
    return i < len(tokens) and (tokens[i].isdigit() or tokens[i] in _DIGIT_WORDS or tokens[i] in _TEEN_WORDS)


def digit_streams(text: str) -> list[str]:
    """The numbers in ``text`` as digit strings: number words read as digits ("forty one" -> 41),
    runs of numbers joined across spaces, punctuation and fillers."""
    tokens = re.findall(r"[a-z]+|\d+", text.lower())
    streams, current, pending_gap = [], "", False
    i = 0
    while i < len(tokens):
        tok, value = tokens[i], None
        if tok.isdigit():
            value = tok
        elif tok in _TENS_WORDS[2:]:
            tens = _TENS_WORDS.index(tok)
            nxt = tokens[i + 1] if i + 1 < len(tokens) else ""
            if nxt in _DIGIT_WORDS[1:]:
                value, i = f"{tens}{_DIGIT_WORDS.index(nxt)}", i + 1
            else:
                value = f"{tens}0"
        elif tok in _WORD_VALUES and (tok not in ("o", "oh") or current or _is_number(tokens, i + 1)):
            value = _WORD_VALUES[tok]
        if value is not None:
            current += value
            pending_gap = False
        elif current and tok in _BRIDGE and not pending_gap:
            pending_gap = True
        elif current:
            streams.append(current)
            current, pending_gap = "", False
        i += 1
    if current:
        streams.append(current)
    return streams


def leaks(span: PiiSpan, texts: Iterable[str]) -> list[str]:
    """The forms of ``span`` found in ``texts`` (empty: nothing leaked)."""
    found = []
    for text in texts:
        normalized = _normalize(text)
        found += [f for f in span.must_not_appear if f" {_normalize(f).strip()} " in normalized]
        found += [f"digits {n}" for s in digit_streams(text) for n in span.needles if n in s]
    return list(dict.fromkeys(found))
