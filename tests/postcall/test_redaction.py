"""Redaction of cards (digits or words), CVVs, SSNs and configured patterns."""

from __future__ import annotations

import pytest

from callcenter.redaction import RedactionPattern, RedactionPolicy, luhn_valid, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "my card number is four one one one one one one one one one one one one one one one.",
            "my card number is [REDACTED CARD].",
        ),
        ("card 4111 1111 1111 1111 exp 12/28", "card [REDACTED CARD] exp [REDACTED EXPIRY]"),
        ("it's 5500-0000-0000-0004, thanks", "it's [REDACTED CARD], thanks"),
        # Whisper repeating digits of a spoken card: the whole spoken number goes.
        (
            "Sure, my card number is 4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1!",
            "Sure, my card number is [REDACTED CARD]!",
        ),
        ("the cvv is seven three one", "the cvv is [REDACTED CVV]"),
        ("security code 1234 ok", "security code [REDACTED CVV] ok"),
        ("my social is one two three four five six seven eight nine", "my social is [REDACTED SSN]"),
        ("SSN 123-45-6789.", "SSN [REDACTED SSN]."),
        ("account 1234567890123", "account [REDACTED NUMBER]"),
    ],
)
def test_sensitive_numbers_are_redacted(text: str, expected: str) -> None:
    assert redact(text).text == expected


@pytest.mark.parametrize(
    "text",
    [
        "call me back at 415 555 0123",
        "I have one two three questions",
        "oh well, see you at two",
        "the total was 120 dollars on order 4512",
        "a 3 digit number 731 without a keyword",
    ],
)
def test_ordinary_numbers_are_kept(text: str) -> None:
    result = redact(text)
    assert result.text == text and result.count == 0


def test_luhn() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112") and not luhn_valid("41a1")


def test_configured_patterns_and_switches() -> None:
    policy = RedactionPolicy(patterns=(RedactionPattern("member_id", r"\bMB-\d{6}\b"),), cvv=False)
    result = redact("member MB-123456, cvv 123, card 4111111111111111", policy)
    assert result.text == "member [REDACTED MEMBER_ID], cvv 123, card [REDACTED CARD]"
    assert result.count == 2


@pytest.mark.parametrize(
    ("turns", "expected"),
    [
        # One caller, a pause in the middle of the card: two segments, one number.
        (
            [("caller", "my card is 4111 1111"), ("caller", "1111 1111 thanks")],
            ["my card is [REDACTED CARD]", "[REDACTED CARD] thanks"],
        ),
        # The code answers the agent's question: the keyword is in the other speaker's turn.
        (
            [("agent", "And the security code on the back?"), ("caller", "seven three one")],
            ["And the security code on the back?", "[REDACTED CVV]"],
        ),
        (
            [("caller", "My social is"), ("caller", "one two three four five six seven eight nine")],
            ["My social is", "[REDACTED SSN]"],
        ),
        # A number does not run on into the other speaker's turn: eight digits each, no card.
        (
            [("agent", "your reference is 4111 1111"), ("caller", "1111 1111 is my member number")],
            ["your reference is 4111 1111", "1111 1111 is my member number"],
        ),
    ],
)
def test_numbers_and_keywords_count_across_turns(turns, expected) -> None:
    from callcenter.redaction import redact_conversation

    result = redact_conversation(turns)
    assert result.texts == expected
    assert result.count == (0 if expected == [t for _, t in turns] else 1)  # one number, however many turns
