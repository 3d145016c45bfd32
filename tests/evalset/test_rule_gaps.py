"""Gaps the evaluation set found in redaction and the do-not-call rules, each as Whisper (tiny.en)
actually wrote it on the set's calls, or as the caller said it: the shared rules must hold."""

from __future__ import annotations

import re

import pytest

from callcenter.do_not_call import asks_not_to_be_called, conversation_asks_not_to_be_called
from callcenter.redaction import redact, redact_conversation
from callcenter.report import Speaker

A, C = Speaker.AGENT, Speaker.CALLER


def digits_left(texts: list[str]) -> list[str]:
    return re.findall(r"\d+", " ".join(texts))


@pytest.mark.parametrize(
    "turns",
    [
        # STT dropped a digit ("one four eight eight" -> "148") and wrote "um" as "I'm": 15 digits, no Luhn.
        [
            ("agent", "Sure, go ahead with the card number whenever you're ready."),
            ("caller", "4539."),
            ("caller", "148."),
            ("agent", "in-M-M."),
            ("caller", "0343."),
            ("caller", "I'm 6467."),
        ],
        # A long interruption between the halves of one card.
        [
            ("agent", "Sure, what's the card number?"),
            ("caller", "492 9 731 0."),
            ("caller", "Sorry, my dog is barking."),
            ("caller", "Hold on."),
            ("caller", "Where was I?"),
            ("caller", "5826 441 7."),
        ],
        [
            ("agent", "Sure, what's the card number?"),
            ("caller", "Four nine two nine, seven three one zero."),
            ("caller", "Sorry, my dog is barking, hold on. Where was I?"),
            ("caller", "Five eight two six, four four one seven."),
        ],
        # Four digits lost: 12 left, the answer to a card question; the code follows with no keyword.
        [
            ("agent", "All right, what's the card number?"),
            ("caller", "601100990134."),
            ("caller", "Hang on, I need my glasses, it's 591."),
        ],
    ],
)
def test_a_card_misheard_or_interrupted_is_still_redacted(turns) -> None:
    result = redact_conversation(turns)
    assert digits_left(result.texts) == [], result.texts
    assert not re.search(r"\b(four|five|nine|seven)\b", " ".join(result.texts[1:]), re.IGNORECASE), result.texts


def test_an_ssn_stt_lost_digits_of_is_still_redacted() -> None:
    # A held-out call: "seven one two. Then forty eight. Then three three oh five", "oh" written "or".
    turns = [
        ("caller", "The insurance company told me you need my social for the claim."),
        ("caller", "Okay, 712, then 48, then 3, 3, or 5."),
    ]
    assert "[REDACTED SSN]" in redact_conversation(turns).texts[1]
    assert digits_left(redact_conversation(turns).texts) == ["5"]  # a lone digit says nothing


@pytest.mark.parametrize("answer", ["731.", "Seven three one."])
def test_a_code_asked_for_by_the_signature_strip(answer: str) -> None:
    turns = [
        ("agent", "The card on file was declined. I just need the number from the signature strip to retry it."),
        ("caller", answer),
    ]
    assert redact_conversation(turns).texts[1] == "[REDACTED CVV]."


@pytest.mark.parametrize(
    "text",
    [
        "call me back at 415 555 0123",
        "the total was 120 dollars on order 4512",
        "Thank you, the payment of $80 went through.",
        "I have Tuesday at 10 or Thursday at 2, room 204.",
    ],
)
def test_ordinary_numbers_are_still_kept(text: str) -> None:
    assert redact(text).text == text


@pytest.mark.parametrize(
    "words",
    [
        # Said on the set's calls, as Whisper wrote them.
        "No more calls, please, I'll book online when I'm ready.",
        "Give me off your calling list, I've asked before.",  # "Get me off", misheard
        "Honestly I'd rather you didn't call here anymore, I have a dentist I like.",
        "I want to opt out of these calls.",
        "No, and don't you dare call me again.",
        # The same requests in other words.
        "Cross me off your list.",
        "Please unsubscribe me.",
        "I'd prefer it if you didn't phone me anymore.",
        "No more texts or calls.",
        "Get my number out of your system.",
        # A held-out call, as Whisper wrote it.
        "Quit it with the calls, okay. I'm not coming back to your clinic.",
        "Enough with these calls.",
    ],
)
def test_indirect_do_not_call_requests_are_heard(words: str) -> None:
    assert asks_not_to_be_called([words])


@pytest.mark.parametrize(
    "words",
    [
        "I'm driving right now. Call me back tomorrow morning, okay?",
        "Oh, wait, don't hang up! I do need an appointment.",
        "This is my work phone. Can you call my cell instead?",
        "Oh, don't worry, I already booked my checkup last week.",
        "I never got the text with my appointment time. Can you text it again?",
        "Next time please call before noon, I work nights.",
        "I got your number from the list on your website.",
        "Why didn't you call me back yesterday?",
        # A held-out call: a name, not a request (the caller says what they are called).
        "Please don't call me sir, I'm Jamie. Anyway, yes, I'd like to book that checkup.",
        "Please don't call me, sir. I'm Jamie. Anyway, yes, I'd like to book that checkup.",  # as Whisper wrote it
        "Don't call me by my first name at the office.",
    ],
)
def test_near_misses_are_not_requests(words: str) -> None:
    assert not asks_not_to_be_called([words])


GREETING = "Hi, this is Abba, an automated assistant for J. Denel. This call may be recorded."


@pytest.mark.parametrize(
    ("conversation", "asked"),
    [
        # The held-out calls on a form of address or a name after "call me", as Whisper wrote them.
        (
            [(A, GREETING), (C, "Please don't call me, sir. I'm Jamie. Anyway, yes, I'd like to book that checkup.")],
            False,
        ),
        ([(A, GREETING), (C, "I can ask why so ready? Please don't call me sir.")], True),  # no comma, no naming
        ([(A, GREETING), (C, "Don't call me, Ava, I am not interested in a checkup.")], True),  # the agent's own name
        ([(A, GREETING), (C, "Stop calling me, man. I already have a dentist.")], True),
        (
            [
                (A, GREETING + " Good morning, sir."),
                (C, "Don't call me sir, it makes me feel old, but yes, I'm do for a checkup."),
            ],
            False,
        ),
        (
            [
                (A, GREETING + " Am I speaking with Robert?"),
                (C, "Don't call me Robert, everyone calls me Bob, what's this about?"),
            ],
            False,
        ),
        # The same words without what made them naming: requests (compliance fails closed).
        ([(A, GREETING), (C, "Don't call me, sir.")], True),
        ([(A, GREETING), (C, "Don't call me Robert.")], True),
        ([(A, GREETING), (C, "Don't call me, sir. I'm busy.")], True),  # "busy" is no name
        ([(A, "Good morning, sir."), (C, "Okay."), (A, "Would you like to book?"), (C, "Don't call me, sir.")], True),
        ([(A, "Yes, sir."), (C, "Don't call me again, sir.")], True),  # the form of address does not end "call me"
        ([(A, "Yes, sir."), (C, "Stop calling me, sir, and take me off your list.")], True),  # a second request
        # One turn STT wrote as two segments is read as one; the agent's several segments too.
        ([(A, "Hi."), (C, "Please don't call me, sir."), (C, "I'm Jamie.")], False),
        ([(A, "Good morning,"), (A, "sir."), (C, "Don't call me, sir.")], False),
        ([(C, "Don't ring"), (C, "this number again.")], True),
    ],
)
def test_a_form_of_address_after_call_me_is_read_with_the_conversation(conversation, asked: bool) -> None:
    assert conversation_asks_not_to_be_called(conversation) is asked
