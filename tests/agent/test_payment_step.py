"""The payment step: the recording stops before the agent asks for card data, starts again as a
new segment once a security code was given (or after the persona's bound), and the caller's words
in between reach neither the model nor the live transcript."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from livekit import api
from livekit.agents import llm

from agent.call_control import CallControl
from agent.call_state import utcnow
from agent.payment import CARD_DATA_LABEL, PaymentStep, asks_for_card_data, wants_to_pay
from agent.personas import PaymentSettings
from agent.recording import CallRecording, Segment, pause_recording, resume_recording, start_recording
from agent.session_report import build_report, redact_turns
from agent.settings import load_settings
from agent.worker import new_call
from callcenter.ids import new_call_id
from callcenter.paths import audio_segment_path
from callcenter.report import SessionReport, Speaker, parse_report


class Recorder:
    """Stands in for the recording's pause/resume and notes the order things happened in."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def pause(self) -> None:
        await asyncio.sleep(0.01)  # stopping an egress takes a round trip
        self.events.append("pause")

    async def resume(self) -> None:
        self.events.append("resume")


def step(recorder: Recorder, resume_after_s: float = 30.0) -> PaymentStep:
    return PaymentStep("call-x", pause=recorder.pause, resume=recorder.resume, resume_after_s=resume_after_s)


async def spoken(payment: PaymentStep, recorder: Recorder, chunks: list[str]) -> list[str]:
    async def text():
        for chunk in chunks:
            yield chunk

    async for sentence in payment.guard(text()):
        recorder.events.append(f"say:{sentence.strip()}")
    return recorder.events


async def test_the_recording_stops_before_the_card_question_is_spoken() -> None:
    recorder = Recorder()
    payment = step(recorder)
    events = await spoken(payment, recorder, ["Sure, I can help. Please read me ", "your card num", "ber. Thanks."])
    assert events == ["say:Sure, I can help.", "pause", "say:Please read me your card number.", "say:Thanks."]
    assert payment.active


async def test_the_step_ends_when_the_security_code_is_given_and_the_model_never_hears_it() -> None:
    recorder = Recorder()
    payment = step(recorder)
    await payment.begin("Please tell me your card number, the expiry date and the security code.")
    for_model, taken = await payment.caller_said("It's 4111 1111 1111 1111, expiring twelve twenty eight")
    assert "4111" not in for_model and not taken and payment.active and recorder.events == ["pause"]
    for_model, taken = await payment.caller_said("and the code on the back is seven three nine")
    assert "seven three nine" not in for_model, for_model
    assert taken and not payment.active and recorder.events == ["pause", "resume"]


async def test_the_code_said_with_its_name_ends_the_step_though_the_question_named_the_expiry_too() -> None:
    # heard on a real call: with the question's "expiry date" nearby, the shared rules read the code as an expiry
    recorder = Recorder()
    payment = step(recorder)
    await payment.begin("Please tell me the long number on your card, the expiry date, and then the security code.")
    for_model, taken = await payment.caller_said("The security code did 739 items.")
    assert taken and "739" not in for_model and recorder.events == ["pause", "resume"]


async def test_a_question_the_caller_never_answers_resumes_the_recording_after_the_bound(caplog) -> None:
    recorder = Recorder()
    payment = step(recorder, resume_after_s=0.05)
    await payment.begin("What is the security code?")
    await payment.caller_said("Hang on, let me find my wallet.")
    await asyncio.sleep(0.2)
    assert recorder.events == ["pause", "resume"] and payment.timeouts == 1 and not payment.active
    assert "recording resumed anyway" in caplog.text and "wallet" not in caplog.text


async def test_a_pause_that_fails_does_not_let_the_question_be_asked() -> None:
    async def broken() -> None:
        raise RuntimeError("egress unreachable")

    payment = PaymentStep("call-x", pause=broken, resume=Recorder().resume, resume_after_s=30)
    with pytest.raises(RuntimeError):
        await payment.begin("Your card number, please.")
    assert not payment.active


@pytest.mark.parametrize(
    ("text", "asks"),
    [
        ("Could you read me the long number on the front of your card?", True),
        ("And the three digits on the back?", True),
        ("What's the CVV?", True),
        ("Please give me the expiry date.", True),
        ("Your bill is due on the first.", False),
        ("Your plan renews next month.", False),
    ],
)
def test_which_words_ask_for_card_data(text: str, asks: bool) -> None:
    assert asks_for_card_data(text) is asks


def test_caller_asking_to_pay() -> None:
    assert wants_to_pay("Hi, I'd like to pay my bill by card.")
    assert wants_to_pay("Can I make a payment?")
    assert not wants_to_pay("When is my payment due?")


def test_a_persona_card_prompt_the_stop_rule_would_miss_is_refused() -> None:
    with pytest.raises(ValueError, match="card_prompt"):
        PaymentSettings(card_prompt="Go ahead whenever you are ready.")


def test_a_taken_message_that_asks_for_card_data_is_refused() -> None:
    with pytest.raises(ValueError, match="taken_message"):
        PaymentSettings(card_prompt="Your card number, please.", taken_message="Thanks. And the expiry date?")


class EgressDouble:
    """The egress part of ``api.LiveKitAPI``: each start is a new egress (a new file)."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.stopped: list[str] = []

    async def start_room_composite_egress(self, request):  # noqa: ANN001, ANN201
        self.started.append(request.file_outputs[0].filepath)
        return api.EgressInfo(egress_id=f"EG_{len(self.started)}")

    async def stop_egress(self, request):  # noqa: ANN001, ANN201
        self.stopped.append(request.egress_id)
        return api.EgressInfo(egress_id=request.egress_id, status=api.EgressStatus.EGRESS_ENDING)


async def test_each_resume_is_a_new_egress_and_a_step_before_the_recording_holds_its_start() -> None:
    call = make_call()
    lkapi = type("LK", (), {"egress": EgressDouble()})()
    settings = load_settings(recordings_bucket="b", recorder="egress")
    call.recording = recording = CallRecording(lkapi, settings, call)
    # the greeting asked for card data before the recording started: it must not start under the step
    assert await pause_recording(call) is False
    await start_recording(lkapi, settings, call)
    assert lkapi.egress.started == [] and call.recording_path is None
    await resume_recording(call)
    assert (
        lkapi.egress.started == [audio_segment_path(call.call_id, 0)] and call.recording_path == lkapi.egress.started[0]
    )
    assert await pause_recording(call) is True and lkapi.egress.stopped == ["EG_1"]
    await resume_recording(call)
    assert lkapi.egress.started[1] == audio_segment_path(call.call_id, 1)
    assert [s.egress_id for s in recording.segments] == ["EG_1", "EG_2"]
    assert recording.segments[0].ended_at is not None and recording.segments[1].ended_at is None


class StuckEgress(EgressDouble):
    def __init__(self, answer) -> None:  # noqa: ANN001
        super().__init__()
        self.answer = answer

    async def stop_egress(self, request):  # noqa: ANN001, ANN201
        if isinstance(self.answer, Exception):
            raise self.answer
        return api.EgressInfo(egress_id=request.egress_id, status=self.answer)


@pytest.mark.parametrize(
    ("answer", "stops"),
    [
        (api.EgressStatus.EGRESS_ENDING, True),
        (api.TwirpError("failed_precondition", "egress already ended", status=412), True),
        (api.EgressStatus.EGRESS_ACTIVE, False),
        (api.TwirpError("unavailable", "no egress instance", status=503), False),
    ],
)
async def test_a_payment_pause_that_egress_did_not_confirm_fails_closed(answer, stops: bool) -> None:  # noqa: ANN001
    call = make_call()
    lkapi = type("LK", (), {"egress": StuckEgress(answer)})()
    settings = load_settings(recordings_bucket="b", recorder="egress")
    await start_recording(lkapi, settings, call)
    payment = PaymentStep(
        call.call_id, pause=lambda: pause_recording(call), resume=Recorder().resume, resume_after_s=30
    )
    if stops:
        await payment.begin("Your card number, please.")
        assert payment.active
    else:
        with pytest.raises((RuntimeError, api.TwirpError)):
            await payment.begin("Your card number, please.")
        assert not payment.active


def make_call():
    control = CallControl(api.LiveKitAPI("http://127.0.0.1:9", "k", "s" * 40), new_call_id())
    return new_call(control, None, load_settings())


async def test_the_report_lists_the_segments_and_keeps_no_word_of_the_paused_span() -> None:
    call = make_call()
    t0 = utcnow()
    call.started_at = call.answered_at = call.recording_started_at = t0
    recording = CallRecording(None, load_settings(), call)  # type: ignore[arg-type]
    recording.segments = [
        Segment(path=audio_segment_path(call.call_id, 0), started_at=t0, ended_at=t0 + timedelta(seconds=4)),
        Segment(path=audio_segment_path(call.call_id, 1), started_at=t0 + timedelta(seconds=11.5)),
    ]
    call.recording, call.recording_path = recording, recording.segments[0].path
    origin = t0.timestamp()
    ctx = llm.ChatContext()
    for role, text, a, b in [
        ("user", "I'd like to pay my bill.", 1.0, 2.0),
        ("assistant", "Please tell me your card number and the security code.", 4.5, 7.0),
        ("user", "4111 1111 1111 1111 and the code is seven three nine", 7.5, 11.0),
        ("assistant", "Thank you, that's done.", 12.0, 13.0),
        ("user", "Please email me the receipt.", 13.5, 15.0),
    ]:
        ctx.add_message(role=role, content=text).metrics = {
            "started_speaking_at": origin + a,
            "stopped_speaking_at": origin + b,
        }

    heard = build_report(call, ctx, ended_at=t0 + timedelta(seconds=16), agent_name="a")
    report = parse_report(redact_turns(heard).model_dump_json())

    assert [(s.path.rsplit("/", 1)[1], s.start, s.end) for s in report.recording_segments] == [
        ("audio.ogg", 0.0, 4.0),
        ("audio.1.ogg", 11.5, None),
    ]
    assert report.paused_spans() == [(4.0, 11.5)]
    caller = [t.text for t in heard.turns if t.speaker is Speaker.CALLER]
    assert caller == ["I'd like to pay my bill.", CARD_DATA_LABEL, "Please email me the receipt."]
    assert "seven three nine" not in heard.model_dump_json()


async def test_a_recording_stopped_until_the_hang_up_keeps_no_caller_word_after_the_stop() -> None:
    call = make_call()
    t0 = utcnow()
    call.started_at = call.answered_at = call.recording_started_at = t0
    recording = CallRecording(None, load_settings(), call)  # type: ignore[arg-type]
    recording.segments = [
        Segment(path=audio_segment_path(call.call_id, 0), started_at=t0, ended_at=t0 + timedelta(seconds=4)),
    ]
    call.recording, call.recording_path = recording, recording.segments[0].path
    ctx = llm.ChatContext()
    ctx.add_message(role="user", content="the code is seven three nine").metrics = {
        "started_speaking_at": t0.timestamp() + 8,
        "stopped_speaking_at": t0.timestamp() + 9,
    }
    report = build_report(call, ctx, ended_at=t0 + timedelta(seconds=10), agent_name="a")
    assert [(s.start, s.end) for s in report.recording_segments] == [(0.0, 4.0)]
    assert [t.text for t in report.turns] == [CARD_DATA_LABEL]


def test_segments_out_of_order_are_refused() -> None:
    base = make_report_dict()
    base["recording_segments"] = [{"path": "a", "start": 0, "end": 5}, {"path": "b", "start": 4}]
    with pytest.raises(ValueError, match="in order"):
        SessionReport.model_validate(base)
    base["recording_segments"] = [{"path": "a", "start": 0}, {"path": "b", "start": 4}]
    with pytest.raises(ValueError, match="in order"):
        SessionReport.model_validate(base)


def make_report_dict() -> dict:
    now = utcnow()
    return {
        "call_id": new_call_id(),
        "direction": "inbound",
        "room": "r",
        "started_at": now.isoformat(),
        "ended_at": now.isoformat(),
        "outcome": "answered",
    }


async def test_only_a_persona_that_takes_payments_offers_the_payment_tool(tmp_path) -> None:  # noqa: ANN001
    from agent.call_agent import CallCenterAgent
    from agent.personas import load_persona
    from agent.settings import PERSONAS_DIR

    call = make_call()
    assert "take_payment" not in {t.id for t in CallCenterAgent(call).tools}
    call.persona = load_persona("bill_payment", PERSONAS_DIR)
    assert "take_payment" in {t.id for t in CallCenterAgent(call).tools}
