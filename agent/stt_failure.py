"""When speech recognition fails mid-call, the caller hears why and is not left on a deaf line.

livekit-agents reports an STT failure as the AgentSession's ``error`` event with an
``STTError``: ``recoverable=True`` while the plugin retries its connection, ``False`` once it
gave up. After an unrecoverable error the agent hears nothing more (the session itself closes
only after ``max_unrecoverable_errors`` more), so a caller would talk into silence. On the first
unrecoverable STT error the agent speaks a fixed apology, then transfers the caller to the
human queue if the call has one, or hangs up; the session report's ``agent_error`` says why.
The reason names the service and the error type only: never the error's message, which can
quote the request.
"""

from __future__ import annotations

import asyncio
import logging

from livekit.agents import AgentSession
from livekit.agents.voice.events import ErrorEvent

from agent.call_agent import CallCenterAgent
from callcenter.outcomes import CallOutcome

log = logging.getLogger("agent.stt_failure")

APOLOGY_TRANSFER = "I'm sorry, I'm having trouble hearing you. Let me connect you with a member of our team."
APOLOGY_END = "I'm sorry, I'm having trouble hearing you right now. Please call us back later. Goodbye."


def stt_failure_reason(ev: ErrorEvent) -> str:
    error = ev.error
    source = ev.source
    label = " ".join(str(v) for v in (getattr(source, "provider", None), getattr(source, "model", None)) if v)
    inner = getattr(error, "error", None)
    code = getattr(inner, "status_code", None)
    detail = type(inner).__name__ if inner is not None else type(error).__name__
    if isinstance(code, int) and code >= 0:
        detail += f" {code}"
    return f"speech recognition failed ({label or type(source).__name__}: {detail})"


class SttFailureGuard:
    """Subscribed to the session's errors; acts once per call, on the first unrecoverable STT error.

    The framework recreates the failed stream and closes the session itself after a few more
    failures: ``wait`` (the worker's shutdown awaits it) lets the apology and the transfer or
    hang-up finish first, so the caller is never left in a room the agent has left.
    """

    def __init__(self, session: AgentSession, agent: CallCenterAgent) -> None:
        self.session, self.agent = session, agent
        self.task: asyncio.Task | None = None
        session.on("error", self._on_error)

    def _on_error(self, ev: ErrorEvent) -> None:
        error = ev.error
        if getattr(error, "type", None) != "stt_error" or error.recoverable or self.task is not None:
            return
        call = self.agent.call
        call.agent_error = stt_failure_reason(ev)
        target = call.transfer_to
        log.error(
            "%s mid-call: apologising, then %s",
            call.agent_error,
            "transferring the caller" if target else "hanging up",
            extra={"call_id": call.call_id},
        )
        handle = self.session.say(APOLOGY_TRANSFER if target else APOLOGY_END, allow_interruptions=False)
        self.task = asyncio.create_task(_then(self.agent, handle, target), name=f"stt-failure-{call.call_id}")

    async def wait(self, timeout_s: float = 30.0) -> None:
        """Until the apology played and the call was transferred or hung up (bounded: a TTS that
        hangs must not hold the session report back)."""
        if self.task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self.task), timeout_s)
        except TimeoutError:
            log.warning(
                "the STT-failure apology and hang-up did not finish in %.0f s",
                timeout_s,
                extra={"call_id": self.agent.call.call_id},
            )


async def _then(agent: CallCenterAgent, handle, target: str | None) -> None:  # noqa: ANN001
    call = agent.call
    try:
        await handle.wait_for_playout()
        if target:
            try:
                await call.control.transfer(target)
            except Exception as exc:  # noqa: BLE001 - the queue did not take the call: end it instead
                log.warning(
                    "transfer after the STT failure failed (%s); hanging up",
                    type(exc).__name__,
                    extra={"call_id": call.call_id},
                )
                call.agent_error += f"; transfer failed ({type(exc).__name__})"
            else:
                call.transferred_to = target
                call.outcome = CallOutcome.TRANSFERRED
                return
        await call.control.hang_up()
    except Exception:
        log.exception("ending the call after the STT failure failed", extra={"call_id": call.call_id})
