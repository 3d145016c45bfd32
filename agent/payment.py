"""A payment step: the recording is stopped before the agent asks for card data and a new segment
starts once it is taken, so no card number, expiry or security code (CVV) is ever recorded
(PCI DSS: sensitive authentication data is never stored after authorisation, audio included).

Driven by the agent's own words, not by the model's judgement: every sentence the agent is about
to speak passes ``guard`` before text-to-speech, and one that asks for card data (``asks_for_card_data``)
waits until the recording has stopped. The persona's ``payment.card_prompt`` is such a sentence,
spoken by the ``take_payment`` tool or when the caller asks to pay (``wants_to_pay``). The step
ends when the caller's words since the question hold a security code (the shared redaction rules,
``callcenter/redaction.py``), or after ``payment.resume_after_s`` (logged): then a new segment
starts. The caller's words in between never reach the model (redacted), the live transcript (their
turns are replaced by ``CARD_DATA_LABEL``) or a log.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable

from callcenter.redaction import CVV_LABEL, redact, redact_conversation

log = logging.getLogger("agent.payment")

CARD_DATA_LABEL = "[CARD DATA NOT RECORDED]"

# The agent's words that ask for card data: before one is spoken the recording stops.
_CARD_DATA_ASK = re.compile(
    r"\b(card\s*(number|details|info\w*)|long\s+number|number\s+on\s+(the|your)\s+card|security\s+code|"
    r"cvv\d?|cvc\d?|cv2|card\s+verification|verification\s+(code|number|value)|digits\s+on\s+the\s+back|"
    r"expiry|expiration(\s+date)?|exp\.?\s+date|valid\s+thr\w*)\b",
    re.IGNORECASE,
)
# The caller's words asking to pay: the agent starts the payment step itself, not waiting for the model.
_WANTS_TO_PAY = re.compile(
    r"\b(pay(ing)?\s+(my|the|this|that|it|by|with|now|off|today|a\s+bill|over)|make\s+a\s+payment|"
    r"settle\s+(my|the)\s+(bill|balance|account))\b",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def asks_for_card_data(text: str) -> bool:
    return bool(_CARD_DATA_ASK.search(text))


def wants_to_pay(text: str) -> bool:
    return bool(_WANTS_TO_PAY.search(text))


def _read(heard: list[tuple[str, str]]) -> tuple[str, bool]:
    """The caller's last words redacted, and whether a security code (the last thing asked for)
    has been given. Read twice with the shared rules: with the agent's question (a bare "739"
    answering "the security code on the back?") and the caller's words alone (the question's
    "expiry date" nearby would make "the security code is 739" an expiry)."""
    with_question = redact_conversation(heard)
    alone = redact_conversation([turn for turn in heard if turn[0] == "caller"])
    taken = CVV_LABEL in with_question.labels or CVV_LABEL in alone.labels
    return redact(with_question.texts[-1]).text, taken


def card_data_taken(heard: list[tuple[str, str]]) -> bool:
    return _read(heard)[1]


class PaymentStep:
    """One call's payment steps. ``pause``/``resume`` stop and restart the recording (agent/recording.py)."""

    def __init__(
        self,
        call_id: str,
        *,
        pause: Callable[[], Awaitable[object]],
        resume: Callable[[], Awaitable[object]],
        resume_after_s: float,
    ) -> None:
        self._call_id = call_id
        self._pause, self._resume = pause, resume
        self.resume_after_s = resume_after_s
        self.active = False
        self._heard: list[tuple[str, str]] = []  # the span's words, in memory only: never logged or stored
        self._timer: asyncio.Task | None = None
        self._lock = asyncio.Lock()
        self.steps = 0
        self.timeouts = 0

    async def guard(self, text: AsyncIterable[str]) -> AsyncIterator[str]:
        """The agent's outgoing text, sentence by sentence: one asking for card data is held until
        the recording has stopped."""
        pending = ""
        async for chunk in text:
            pending += chunk
            *sentences, pending = _SENTENCE_END.split(pending)
            for sentence in sentences:
                await self.before_agent_says(sentence)
                yield sentence + " "
        if pending:
            await self.before_agent_says(pending)
            yield pending

    async def before_agent_says(self, sentence: str) -> None:
        if asks_for_card_data(sentence):
            await self.begin(sentence)

    async def begin(self, asked: str) -> None:
        """Stop the recording (returns once it has stopped) and start listening for the card data."""
        async with self._lock:
            self._heard.append(("agent", asked))
            if self.active:
                return
            self.active = True
            self.steps += 1
            try:
                stopped = await self._pause()
            except Exception:
                # fail closed: the question is not asked over a recording that may still run
                self.active = False
                log.exception("could not stop the recording for a payment step", extra={"call_id": self._call_id})
                raise
            log.info("payment step: recording %s", "stopped" if stopped else "held", extra={"call_id": self._call_id})
            self._timer = asyncio.create_task(self._resume_later(), name=f"payment-timeout-{self._call_id}")

    async def caller_said(self, text: str) -> tuple[str, bool]:
        """The caller's words during the step: returns them redacted (for the model), and whether
        that ended the step (the card data is taken)."""
        if not self.active:
            return text, False
        async with self._lock:
            self._heard.append(("caller", text))
            for_model, taken = _read(self._heard)
        if taken:
            await self.end("card data taken")
        return for_model, taken

    async def end(self, reason: str) -> None:
        async with self._lock:
            if not self.active:
                return
            self.active = False
            self._heard = []
            if self._timer is not None and self._timer is not asyncio.current_task():
                self._timer.cancel()
            self._timer = None
        try:
            await self._resume()
        except Exception:
            log.exception("could not restart the recording after a payment step", extra={"call_id": self._call_id})
            return
        log.info("payment step ended (%s): recording resumed", reason, extra={"call_id": self._call_id})

    async def _resume_later(self) -> None:
        await asyncio.sleep(self.resume_after_s)
        self.timeouts += 1
        log.warning(
            "payment step: no card data taken in %.0f s, recording resumed anyway",
            self.resume_after_s,
            extra={"call_id": self._call_id},
        )
        await self.end("timed out")

    async def close(self) -> None:
        """The call ended: nothing more to resume."""
        if self._timer is not None:
            self._timer.cancel()
        self.active = False
        self._heard = []
