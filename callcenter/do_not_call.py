"""A do-not-call request, the one home of how it is heard and written down.

Heard three ways: the agent's ``record_do_not_call`` tool, the caller's own words on the live
transcript (the backstop when the model misses it or the caller hangs up first), and post-call
over the whole transcript (these rules and the LLM's reading). Whoever hears it first writes a
``DoNotCallRequest`` next to the call's recording at once (``callcenter.paths.do_not_call_path``),
not at the end of the call: an agent crash or a failed report upload cannot lose it. Dialing's
sweep lists these objects with the reports and suppresses the number within one tick.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from callcenter.outcomes import CallDirection
from callcenter.report import Speaker

# In the caller's own words. Matching too much suppresses a number too many; matching too little
# calls someone who asked not to be called: with the law on one side, the rules lean to matching.
_VERB = (
    r"(?:call(?:s|ing)?|ring(?:s|ing)?|phon(?:es?|ing)|contact(?:s|ing)?|bother(?:s|ing)?|text(?:s|ing)?"
    r"|dial(?:s|l?ing)?)"
)
_WHO = r"(?:me|us|my (?:number|name)|this number|our number)"
DO_NOT_CALL_WORDS = re.compile(
    "|".join(
        (
            # "stop calling", "don't ring this number", "never call me again", "quit bothering me",
            # "no more calls", "don't you dare call me again"
            # but not "don't call me by my first name", "don't call me that": naming, not a request.
            # "don't call me(,) sir" is read with the conversation (_ADDRESSED below).
            rf"\b(?:stop|quit|don'?t|do not|never|no more)\s+(?:you\s+)?(?:ever\s+|dare\s+|even\s+)?{_VERB}\b"
            r"(?!\s+me\s+(?:by|that)\b)",
            # "take me off your list", "remove my number from your database"
            r"\b(?:take|remove|delete|drop|strike|scratch|cross)\s+(?:me|my number|my name|this number|us)\s+(?:off|from|out of)\b",
            # whatever verb STT wrote ("give me off", "get my number out of"): off/out of their list
            rf"\b{_WHO}\s+(?:off|out of)\s+(?:your|the|this|that)\s+(?:\w+\s+)?(?:list|database|system|records?)\b",
            r"\b(?:put|add)\s+(?:me|my number|this number|us)\s+(?:on|to)\s+(?:your|the)\s+(?:do[- ]not[- ]call|dnc|no[- ]call)\b",
            r"\bdo[- ]not[- ]call\b",
            # "I never want to hear from you people again", "don't want to hear from you"
            r"\b(?:never|don'?t|do not)\s+(?:\w+\s+)?want\s+(?:to\s+)?(?:hear|be called|be contacted|any (?:more )?calls)\b",
            # "I'd rather you didn't call here anymore", "I'd prefer it if you didn't phone me"
            rf"\b(?:rather|prefer(?: it)?(?: if)?)\s+(?:that\s+)?you\s+(?:didn'?t|did not|don'?t|do not|wouldn'?t|would not|stopped)\s+{_VERB}\b",
            # "quit it with the calls", "enough with these calls"
            r"\b(?:quit|stop|enough|done)\s+(?:it\s+)?with\s+(?:the|these|those|your|all (?:the|these|your))\s+"
            r"(?:\w+\s+)?(?:calls|phone calls|texts|messages)\b",
            r"\bopt(?:ing)?[- ]?out\b",
            r"\bunsubscribe\b",
            r"\blose\s+(?:my|this)\s+number\b",
            r"\b(?:leave|let)\s+me\s+alone\b",
        )
    ),
    re.IGNORECASE,
)


# "don't call me sir", "stop calling me, ma'am", "don't call me Robert": the words after the verb
# may say how the caller is addressed rather than ask for no more calls. The comma is STT's guess
# (tiny.en wrote "Please don't call me sir, I'm Jamie" as "Please don't call me, sir. I'm Jamie."),
# so it decides nothing: the conversation does. A form of address or a name that ends the clause
# is about naming when the agent's turn just before addressed the caller so ("Yes, sir", "Thanks,
# Robert"), or the caller goes on to say what they are called ("I'm Jamie", "call me Bob").
# Otherwise it is a request: compliance fails closed ("Don't call me, sir." alone, "Don't call me,
# Ava", the agent's own name, are requests).
_FORM_OF_ADDRESS = (
    r"(?:sir|ma'?am|madam|miss|mister|mr|mrs|ms|honey|hon|sweetie|sweetheart|dear|darling|love|buddy|pal|mate"
    r"|man|dude|boss|lady)"
)
_ADDRESSED = re.compile(rf"\s+me\s*,?\s+(?P<word>(?i:{_FORM_OF_ADDRESS})|[A-Z][a-z]+)(?=\s*(?:[.,!?;:]|$))")
# the caller naming themselves: the name capitalised, as STT writes names ("I'm busy" is no name)
_NAMES_THEMSELVES = re.compile(
    r"(?i:\b(?:i'?m|i am|my name is|my name's|call me|(?:everyone|everybody|people|they|friends) calls? me|i go by)\s+)"
    r"(?P<name>[A-Z][a-z]+)\b(?!'s)"
)
# "this is Ava", "I'm Ava": the agent's own name, not how it addressed the caller
_SELF_INTRODUCED = re.compile(r"(?i:\b(?:this is|i'?m|i am|my name is|my name's))\s+$")


def _agent_addressed_caller_as(word: str, agent_before: str) -> bool:
    flags = re.IGNORECASE if re.fullmatch(_FORM_OF_ADDRESS, word, re.IGNORECASE) else 0
    return any(
        not _SELF_INTRODUCED.search(agent_before[: m.start()])
        for m in re.finditer(rf"(?<!\w){re.escape(word)}(?!\w)", agent_before, flags)
    )


def _about_how_addressed(text: str, match: re.Match[str], agent_before: str) -> bool:
    addressed = _ADDRESSED.match(text, match.end())
    if addressed is None:
        return False
    return (
        _agent_addressed_caller_as(addressed["word"], agent_before)
        or _NAMES_THEMSELVES.search(text, addressed.end()) is not None
    )


def caller_asks_not_to_be_called(text: str, agent_before: str = "") -> bool:
    """True when one turn of the caller's asks not to be called again; ``agent_before`` is the
    agent's turn just before it (what tells "don't call me, sir" about naming from a request)."""
    return any(not _about_how_addressed(text, m, agent_before) for m in DO_NOT_CALL_WORDS.finditer(text))


def asks_not_to_be_called(texts: Iterable[str]) -> bool:
    """True when any of the caller's utterances, read without the agent's words, asks not to be
    called again."""
    return any(caller_asks_not_to_be_called(text) for text in texts)


def conversation_asks_not_to_be_called(turns: Iterable[tuple[Speaker, str]]) -> bool:
    """Over a whole conversation in time order: each caller turn (consecutive utterances joined,
    as STT splits one turn into several) read with the agent's turn before it."""
    agent_before: list[str] = []
    caller: list[str] = []
    for speaker, text in [*turns, (Speaker.AGENT, "")]:
        if speaker is Speaker.CALLER:
            caller.append(text)
            continue
        if caller:
            if caller_asks_not_to_be_called(" ".join(caller), " ".join(agent_before)):
                return True
            caller, agent_before = [], []
        agent_before.append(text)
    return False


class HeardBy(StrEnum):
    AGENT_TOOL = "agent_tool"  # the model called record_do_not_call
    CALLER_WORDS = "caller_words"  # the live backstop on the caller's transcribed words
    POSTCALL_RULES = "postcall_rules"  # these rules over the whole post-call transcript
    POSTCALL_LLM = "postcall_llm"  # the post-call analysis read a request in the transcript


class DoNotCallRequest(BaseModel):
    """Written at once next to the call's recording; dialing applies it within one tick."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    call_id: str
    direction: CallDirection
    heard_at: datetime
    heard_by: HeardBy
    # An inbound caller's number as the SIP trunk gave it (an outbound call's number is in the
    # dial ledger, found by call id). The bucket holds reports with the same number already.
    from_number: str | None = Field(None, description="inbound calls only")
