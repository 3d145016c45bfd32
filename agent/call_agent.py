"""The voice agent of a call: persona-driven instructions plus the call's tools.

Compliance lines (greeting with automated-agent identification, recording notice,
do-not-call confirmation, voicemail message) are spoken verbatim with ``session.say``;
the model decides *when* (by calling a tool), never *what* legal text to say.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterable, Awaitable, Callable

from livekit import rtc
from livekit.agents import Agent, ModelSettings, RunContext, StopResponse, ToolError, ToolResult, function_tool, llm
from livekit.agents.voice import SpeechHandle

from agent.call_bridge import CallBridge
from agent.call_state import CallState, utcnow
from agent.payment import wants_to_pay
from agent.recording import pause_recording
from agent.warm_transfer import CallCenterWarmTransfer, failure_of, in_a_job, parse_callback_time
from callcenter.dispatch import VoicemailPolicy
from callcenter.do_not_call import HeardBy
from callcenter.outcomes import CallOutcome
from callcenter.report import TransferStepName

log = logging.getLogger("agent.call_agent")


class CallCenterAgent(Agent):
    """Inbound calls, and the base of outbound ones: transfer, end call, do-not-call."""

    def __init__(self, call: CallState) -> None:
        request = call.request
        super().__init__(
            instructions=call.persona.system_prompt(
                outbound=request is not None,
                contact_name=request.contact_name if request else None,
                contact_fields=request.contact_fields if request else None,
            ),
            tools=[take_payment] if call.persona.payment is not None else [],
        )
        self.call = call
        self._after_speech: set[asyncio.Task] = set()
        self._bridged: asyncio.Task | None = None  # a warm transfer's bridge, until either side hangs up

    def greet(self) -> SpeechHandle:
        """The opening line: who is calling, that it is automated, and the recording notice.

        Called by the call flow once the caller is on the line (inbound: at once; outbound:
        when the callee answered), so the recording can start after the notice.
        """
        persona = self.call.persona
        text = persona.opening_line() if self.call.speaks_recording_notice else persona.opening_line_without_notice()
        handle = self.session.say(text, allow_interruptions=False)

        def heard(h) -> None:  # noqa: ANN001
            # Disclosed once played out whole: a caller who hangs up mid-greeting heard neither.
            if not h.interrupted:
                self.call.automated_agent_disclosed = True
                self.call.recording_disclosed = self.call.speaks_recording_notice

        handle.add_done_callback(heard)
        return handle

    def _say_then(self, ctx: RunContext[CallState], text: str | None, action: Callable[[], Awaitable[None]]) -> None:
        """Speak ``text`` uninterruptibly, then run ``action`` once it has played out.

        Not awaited inside the tool: the tool's own speech turn must finish first, and
        awaiting a later speech from within it would wait on itself.
        """
        handle = ctx.session.say(text, allow_interruptions=False) if text else None

        async def run() -> None:
            try:
                if handle is not None:
                    await handle.wait_for_playout()
                await action()
            except Exception:
                log.exception("call action after speech failed", extra={"call_id": self.call.call_id})

        task = asyncio.create_task(run(), name=f"after-speech-{self.call.call_id}")
        self._after_speech.add(task)
        task.add_done_callback(self._after_speech.discard)

    def tts_node(self, text: AsyncIterable[str], model_settings: ModelSettings) -> AsyncIterable[rtc.AudioFrame]:
        """Every sentence the agent speaks, scripted or the model's: where the persona takes payments,
        one asking for card data is held until the recording has stopped (agent/payment.py)."""
        payment = self.call.payment
        return Agent.default.tts_node(self, payment.guard(text) if payment is not None else text, model_settings)

    async def on_user_turn_completed(self, turn_ctx: llm.ChatContext, new_message: llm.ChatMessage) -> None:
        """Before the model answers: card data given in a payment step is redacted for it (and for the
        transcript), and the step ends once taken; a caller asking to pay hears the card question.
        Both the card question and the end of the step are the persona's words, not the model's."""
        payment = self.call.payment
        if payment is None:
            return
        text = new_message.text_content or ""
        if payment.active:
            for_model, taken = await payment.caller_said(text)
            new_message.content = [for_model]
            if taken:  # the step ends in reviewed words, not the model's reply to card data
                self._say_instead_of_the_model(new_message, self.call.persona.payment.taken_message)
        elif wants_to_pay(text):  # the card question, not the model's own words about paying
            self._say_instead_of_the_model(new_message, self.call.persona.payment.card_prompt)

    def _say_instead_of_the_model(self, heard: llm.ChatMessage, text: str) -> None:
        # StopResponse drops the model's reply and the caller's turn with it: keep the turn (the report reads it)
        self.session.history.insert(heard)
        self.session.say(text)
        raise StopResponse()

    async def wait_for_call_actions(self) -> None:
        """Wait for pending hang-ups/transfers (tests, shutdown)."""
        if self._after_speech:
            await asyncio.gather(*list(self._after_speech), return_exceptions=True)

    @function_tool
    async def transfer_to_human(self, ctx: RunContext[CallState]) -> ToolResult | str:
        """Transfer the caller to a human member of the team. Use it when the caller asks for a person,
        an agent or a representative, or needs help with their own account."""
        call = self.call
        if not call.transfer_to:
            return "Nobody can take the call now. Apologise briefly and offer to help with something else."
        ctx.disallow_interruptions()
        if call.persona.warm_transfer is not None:
            return await self._warm_transfer(ctx)
        target = call.transfer_to

        async def transfer() -> None:
            try:
                await call.control.transfer(target)
            except Exception as exc:  # the caller is still on the line: tell them
                log.warning("transfer to %s failed: %s", target, exc, extra={"call_id": call.call_id})
                ctx.session.say(call.persona.no_transfer_message)
                return
            call.transferred_to = target
            call.outcome = CallOutcome.TRANSFERRED

        self._say_then(ctx, call.persona.transfer_message, transfer)
        return ToolResult("transfer started", reply_required=False)

    async def _warm_transfer(self, ctx: RunContext[CallState]) -> ToolResult:
        """Hold, dial the human into a consult room, brief them, connect them and leave
        (agent/warm_transfer.py); when nobody is reached, back to the caller with a callback offer."""
        call = self.call
        settings = call.persona.warm_transfer
        assert settings is not None and call.transfer_to is not None
        if not in_a_job():  # the task needs the job's room and API
            call.transfer_step(TransferStepName.FAILED, "no job context")
            return await self._offer_callback(ctx)
        try:
            trunk = await call.control.outbound_trunk(call.request.sip_trunk_id if call.request else None)
        except Exception as exc:  # noqa: BLE001 - the caller is still on the line: offer a callback
            call.transfer_step(TransferStepName.FAILED, f"no outbound trunk ({type(exc).__name__})")
            return await self._offer_callback(ctx)
        await ctx.session.say(call.persona.transfer_message, allow_interruptions=False)
        task = CallCenterWarmTransfer(
            call, settings, history=ctx.session.history, trunk_id=trunk, hold_audio=settings.hold_music
        )
        try:
            await task
        except ToolError as error:
            if not any(s.step is TransferStepName.FAILED for s in call.transfer_steps):
                call.transfer_step(TransferStepName.FAILED, failure_of(error))
            return await self._offer_callback(ctx)
        call.transferred_to = call.transfer_to
        call.outcome = CallOutcome.TRANSFERRED
        if task.bridge is not None:
            # the model and the voice leave; the job stays as the audio relay until either side hangs up
            ctx.session.input.set_audio_enabled(False)
            ctx.session.output.set_audio_enabled(False)
            try:
                await pause_recording(call)  # what caller and human say to each other is not recorded
            except Exception as exc:  # noqa: BLE001 - the call is connected: never undo that for the recording
                log.error("the recording did not stop at the connect: %s", type(exc).__name__, extra={"call_id": call.call_id})
            call.transfer_step(TransferStepName.AGENT_LEFT, "bridge")
            self._bridged = asyncio.create_task(self._end_with(task.bridge), name=f"bridge-{call.call_id}")
        else:
            call.transfer_step(TransferStepName.AGENT_LEFT)
            call.control.leave()
        return ToolResult("the caller is connected to a person; you have left the call", reply_required=False)

    async def _end_with(self, bridge: CallBridge) -> None:
        """A bridged call ends when either side hangs up: the other is hung up, then the job ends
        (and writes the report)."""
        await bridge.ended.wait()
        log.info("bridged call ended: %s", bridge.why, extra={"call_id": self.call.call_id, "frames": bridge.frames})
        await bridge.aclose()
        self.call.control.leave()

    async def _offer_callback(self, ctx: RunContext[CallState]) -> ToolResult:
        call = self.call
        settings = call.persona.warm_transfer
        assert settings is not None
        call.transfer_step(TransferStepName.RETURNED)
        await self.update_tools([*self.tools, schedule_callback])
        await ctx.session.say(settings.callback_offer, allow_interruptions=False)
        return ToolResult(
            "Nobody could take the call; the caller was offered a callback. If they accept, call "
            f"schedule_callback with the time they ask for (it is now {utcnow():%Y-%m-%d %H:%M} UTC) or 'asap'.",
            reply_required=False,
        )

    @function_tool
    async def end_call(self, ctx: RunContext[CallState]) -> ToolResult:
        """End the call. Use it when the conversation is finished or the caller says goodbye."""
        ctx.disallow_interruptions()
        self._say_then(ctx, self.call.persona.goodbye, self.call.control.hang_up)
        return ToolResult("call ending", reply_required=False)

    @function_tool
    async def record_do_not_call(self, ctx: RunContext[CallState]) -> ToolResult:
        """Record a do-not-call request and end the call. Use it as soon as the person asks not to be
        called again, e.g. "stop calling me", "take me off your list", "don't call this number"."""
        ctx.disallow_interruptions()
        self.call.hear_do_not_call(HeardBy.AGENT_TOOL)
        self.call.outcome = CallOutcome.DO_NOT_CALL
        log.info("do-not-call request recorded", extra={"call_id": self.call.call_id})
        self._say_then(ctx, self.call.persona.do_not_call_goodbye, self.call.control.hang_up)
        return ToolResult("do-not-call request recorded; call ending", reply_required=False)


class OutboundCallAgent(CallCenterAgent):
    """Outbound calls: greets once the callee answers; can tell a machine from a person."""

    @function_tool
    async def answering_machine_detected(self, ctx: RunContext[CallState]) -> ToolResult:
        """Call this when the call reached a voicemail greeting or an answering machine, not a person
        (e.g. "leave a message after the tone", "is not available")."""
        call = self.call
        ctx.disallow_interruptions()
        call.outcome = CallOutcome.VOICEMAIL
        request = call.request
        policy = request.voicemail_policy if request is not None else VoicemailPolicy.HANG_UP
        message = (request.voicemail_message if request is not None else None) or call.persona.voicemail_message
        if policy is VoicemailPolicy.LEAVE_MESSAGE and message:
            self._say_then(ctx, message, call.control.hang_up)
            return ToolResult("leaving the voicemail message, then hanging up", reply_required=False)
        if policy is VoicemailPolicy.LEAVE_MESSAGE:
            log.warning("voicemail policy says leave a message but none is set", extra={"call_id": call.call_id})
        self._say_then(ctx, None, call.control.hang_up)
        return ToolResult("hanging up without a message", reply_required=False)

    @function_tool
    async def send_dtmf(self, ctx: RunContext[CallState], digits: str) -> str:
        """Press keys on the phone keypad, to navigate a phone menu (IVR).

        Args:
            digits: the keys to press in order, from 0-9, * and #, e.g. "1" or "1234#".
        """
        if not self.call.persona.dtmf_allowed:
            raise ToolError("this campaign does not allow pressing keys")
        try:
            await self.call.control.send_dtmf(digits)
        except ValueError as exc:
            raise ToolError(str(exc)) from None
        return f"pressed {digits}"


@function_tool
async def schedule_callback(ctx: RunContext[CallState], when: str) -> str:
    """Record that the caller wants a call back, offered when nobody could take the call.

    Args:
        when: "asap", or the time the caller asked for as ISO 8601 with its UTC offset,
            e.g. "2026-12-05T10:00:00-05:00".
    """
    try:
        ctx.userdata.callback_requested = parse_callback_time(when, now=utcnow())
    except ValueError as exc:
        raise ToolError(str(exc)) from None
    log.info("callback requested", extra={"call_id": ctx.userdata.call_id})
    return "callback recorded: confirm it to the caller in one sentence, then call end_call"


@function_tool
async def take_payment(ctx: RunContext[CallState]) -> ToolResult:
    """Take a card payment: asks the caller for their card details. Use it when the caller wants to pay."""
    call = ctx.userdata
    if call.payment is None or call.persona.payment is None:
        raise ToolError("this line does not take payments")
    if not call.payment.active:
        ctx.session.say(call.persona.payment.card_prompt)
    return ToolResult("asking for the card details", reply_required=False)


def mark_answered(call: CallState) -> None:
    if call.answered_at is None:
        call.answered_at = utcnow()
