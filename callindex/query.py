"""Analyst query text -> engine query syntax, shared by both engines."""

from __future__ import annotations

import re

_TERM_RE = re.compile(r'"([^"]*)"|(\S+)')
_WORD_RE = re.compile(r"\w+", re.UNICODE)


def query_terms(query: str) -> list[str]:
    """Split an analyst's query into words and "quoted phrases"; punctuation is dropped.

    Raises ValueError when nothing searchable is left, so the browser can say so.
    """
    terms: list[str] = []
    for phrase, word in _TERM_RE.findall(query):
        words = _WORD_RE.findall(phrase if phrase else word)
        if words:
            terms.append(" ".join(words))
    if not terms:
        raise ValueError(f"search query {query!r} has no words to search for")
    return terms


def fts5_match(query: str) -> str:
    """An FTS5 MATCH expression: every term (or phrase) must occur; user syntax is never interpreted."""
    return " AND ".join(f'"{term}"' for term in query_terms(query))


def pg_tsquery_text(query: str) -> str:
    """Text for ``websearch_to_tsquery``: every term quoted, so words like "or" are never operators."""
    return " ".join(f'"{t}"' for t in query_terms(query))
