"""Text segmentation: sentence order, short first segment, nothing lost."""

from __future__ import annotations

import pytest

from tts.app.text import split_for_speech


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Hello there. How are you?", ["Hello there.", "How are you?"]),
        ("Wait! Really? Yes.", ["Wait!", "Really?", "Yes."]),
        ("Dr. Smith will call at 5 p.m. tomorrow. Thanks.", ["Dr. Smith will call at 5 p.m. tomorrow.", "Thanks."]),
        ('He said "Stop." Then left.', ['He said "Stop."', "Then left."]),
        ("No final punctuation", ["No final punctuation"]),
        ("  Spaces\n\nand   newlines.  Done. ", ["Spaces and newlines.", "Done."]),
        ("Total is 3.50 dollars. OK.", ["Total is 3.50 dollars.", "OK."]),
    ],
)
def test_sentences(text, expected):
    assert split_for_speech(text) == expected


def test_long_first_sentence_is_cut_at_a_clause_for_fast_first_audio():
    text = (
        "Thank you for calling the pharmacy, your prescription is ready for pickup at the main counter, "
        "and it will be held for seven days. Goodbye."
    )
    segments = split_for_speech(text, first_max_chars=40, max_chars=300)
    assert segments[0] == "Thank you for calling the pharmacy,"
    assert segments[-1] == "Goodbye."
    assert all(len(s) <= 300 for s in segments)
    assert " ".join(segments).split() == text.split()


def test_text_without_punctuation_is_cut_at_word_boundaries():
    text = " ".join(["word"] * 200)
    segments = split_for_speech(text, first_max_chars=50, max_chars=100)
    assert len(segments[0]) <= 50 and all(len(s) <= 100 for s in segments)
    assert " ".join(segments).split() == text.split()
