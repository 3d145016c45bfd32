"""Redaction on card, SSN, CVV and expiry read-outs as real callers say them and STT writes them."""

from __future__ import annotations

import re

import pytest

from callcenter.redaction import redact, redact_conversation, redact_value

CARD = "4111111111111111"


def leaked_digits(texts: list[str]) -> list[str]:
    """Digit groups left in the texts (labels removed)."""
    return re.findall(r"\d+", " ".join(texts))


@pytest.mark.parametrize(
    "turns",
    [
        # Groups with the agent's acknowledgements between them.
        [
            ("agent", "What's the card number?"),
            ("caller", "4111"),
            ("agent", "okay"),
            ("caller", "1111"),
            ("agent", "mm-hmm"),
            ("caller", "1111 um 1111"),
        ],
        # STT writing each group as hyphenated digits.
        [
            ("caller", "it's 4-1-1-1"),
            ("agent", "Mm-hmm."),
            ("caller", "1-1-1-1, 1-1-1-1"),
            ("agent", "Okay."),
            ("caller", "1-1-1-1"),
        ],
        # The caller loses their place between the halves.
        [("caller", "4111 1111"), ("caller", "sorry, where was I"), ("caller", "1111 1111")],
    ],
)
def test_cards_read_in_groups_across_turns(turns) -> None:
    result = redact_conversation(turns)
    assert leaked_digits(result.texts) == [], result.texts
    assert "[REDACTED CARD]" in " ".join(result.texts)


@pytest.mark.parametrize(
    "text",
    [
        "four one one one, um, one one one one, okay, one one one one, mm-hmm, one one one one",
        "it's forty one eleven, eleven eleven, eleven eleven, eleven eleven",
        "forty-one eleven eleven eleven, uh, eleven eleven eleven eleven",
        "4111 okay 1111 mm-hmm 1111 um 1111",
        "4-1-1-1-1-1-1-1-1-1-1-1-1-1-1-1",
    ],
)
def test_cards_in_one_turn_with_fillers_and_number_words(text: str) -> None:
    result = redact(text)
    assert "[REDACTED CARD]" in result.text
    assert not re.search(r"\d|\b(one|eleven|forty)\b", result.text), result.text


@pytest.mark.parametrize(
    "turns",
    [
        # Asked long before, read in one breath, written with hyphens by STT.
        [
            ("agent", "To verify your identity, can I have your social security number?"),
            ("caller", "Sure, hold on a second, let me get my wallet out, it's somewhere in my bag"),
            ("caller", "okay here it is, it's 1-2-3-4-5-6-7-8-9"),
        ],
        [("caller", "one two three four five six seven eight nine")],
        [("caller", "123456789")],
        [("caller", "it's 123, um, 45, 6789")],
    ],
)
def test_ssns_read_without_a_keyword_nearby(turns) -> None:
    result = redact_conversation(turns)
    assert leaked_digits(result.texts) == [], result.texts
    assert "one two three" not in " ".join(result.texts)
    assert "[REDACTED SSN]" in " ".join(result.texts)


@pytest.mark.parametrize(
    "turns",
    [
        [("agent", "And the three digits on the back?"), ("caller", "Seven three one.")],
        [
            ("agent", "And the three digits on the back of the card?"),
            ("caller", "hang on"),
            ("caller", "let me flip it over, I can barely read these tiny numbers, it's"),
            ("caller", "seven thirty one"),
        ],
        # The code follows the card, asked for with no keyword at all.
        [("caller", "4111 1111 1111 1111"), ("agent", "Thanks. And the code?"), ("caller", "731")],
    ],
)
def test_cvv_asked_for_without_a_keyword(turns) -> None:
    result = redact_conversation(turns)
    assert leaked_digits(result.texts) == [], result.texts
    assert not re.search(r"\b(seven|thirty)\b", result.texts[-1], re.IGNORECASE), result.texts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("card 4111 1111 1111 1111 exp 12/28", "card [REDACTED CARD] exp [REDACTED EXPIRY]"),
        ("it expires twelve twenty eight", "it expires [REDACTED EXPIRY]"),
        ("the expiration date is oh four slash twenty seven", "the expiration date is [REDACTED EXPIRY]"),
        ("valid thru 04/2027 ok", "valid thru [REDACTED EXPIRY] ok"),
        ("expiry is December twenty twenty eight.", "expiry is [REDACTED EXPIRY]."),
    ],
)
def test_expiry_dates(text: str, expected: str) -> None:
    assert redact(text).text == expected


def test_expiry_after_a_card_without_a_keyword() -> None:
    result = redact_conversation(
        [("caller", "4111 1111 1111 1111"), ("agent", "And when does it run out?"), ("caller", "12/28")]
    )
    assert leaked_digits(result.texts) == [], result.texts


def test_the_agents_read_back_of_part_of_a_card_is_redacted() -> None:
    result = redact_conversation(
        [("caller", "4111 1111 1111 1111"), ("agent", "Let me read that back: 4111 1111 1111, correct?")]
    )
    assert leaked_digits(result.texts) == [], result.texts


@pytest.mark.parametrize(
    "text",
    [
        "call me back at 415 555 0123",
        "I have one two three questions",
        "oh well, see you at two",
        "the total was 120 dollars on order 4512",
        "we open at nine and close at five",
        "twenty two people came, okay",
    ],
)
def test_ordinary_numbers_still_kept(text: str) -> None:
    assert redact(text).text == text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("card_cvv", "731"),
        ("security_code", "seven three one"),
        ("card_expiry", "12/28"),
        ("payment_card", "4111 1111 1111 1111"),
        ("ssn", "123-45-6789"),
    ],
)
def test_extracted_field_values_are_redacted_with_their_name_as_context(field: str, value: str) -> None:
    redacted = redact_value(field, value)
    assert redacted.startswith("[REDACTED"), redacted
    assert not re.search(r"\d|seven", redacted)
