"""Split text into segments synthesized in order, so audio starts before the end is spoken.

Sentences first; a sentence longer than the limit is cut at clause punctuation, then at
spaces. The first segment gets a tighter limit: it alone decides time to first audio.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? … (optionally followed by closing quotes/brackets) then whitespace.
# Abbreviations like "Dr." or "e.g." are not split: the next word must start upper-case or a digit.
_SENTENCE_END = re.compile(r"""(?<=[.!?…])(["')\]]*)\s+(?=["'(\[]?[A-Z0-9])""")
_CLAUSE_END = re.compile(r"(?<=[,;:—–])\s+")
_ABBREVIATIONS = frozenset({"mr.", "mrs.", "ms.", "dr.", "st.", "no.", "vs.", "etc.", "e.g.", "i.e.", "jr.", "sr."})


def split_sentences(text: str) -> list[str]:
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_END.finditer(text):
        candidate = text[start : match.end(1)].strip()  # keep closing quotes with their sentence
        last_word = candidate.rsplit(None, 1)[-1].lower() if candidate else ""
        if last_word in _ABBREVIATIONS:
            continue
        if candidate:
            parts.append(candidate)
        start = match.end()
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _cut(piece: str, limit: int) -> list[str]:
    """Cut one over-long piece at clause punctuation, then at word boundaries."""
    if len(piece) <= limit:
        return [piece]
    out: list[str] = []
    current = ""
    for clause in _CLAUSE_END.split(piece):
        candidate = f"{current} {clause}".strip() if current else clause
        if len(candidate) <= limit:
            current = candidate
            continue
        if current:
            out.append(current)
        current = clause
        while len(current) > limit:
            cut = current.rfind(" ", 0, limit)
            cut = cut if cut > 0 else limit
            out.append(current[:cut].strip())
            current = current[cut:].strip()
    if current:
        out.append(current)
    return out


def split_for_speech(text: str, *, first_max_chars: int = 80, max_chars: int = 300) -> list[str]:
    """Segments in speaking order; joining them with spaces gives back the words of `text`."""
    normalized = " ".join(text.split())
    segments: list[str] = []
    for sentence in split_sentences(normalized):
        limit = first_max_chars if not segments else max_chars
        pieces = _cut(sentence, limit)
        if not segments and len(pieces) > 1:
            # Only the first piece needs to be short; re-cut the rest at the normal limit.
            segments.append(pieces[0])
            segments.extend(_cut(" ".join(pieces[1:]), max_chars))
        else:
            segments.extend(pieces)
    return segments
