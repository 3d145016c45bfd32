"""Dialing ticks against the LiveKit Twirp double and the GCS emulator, ledger on both engines."""

from __future__ import annotations

from datetime import timedelta

import pytest
from livekit.protocol import models as room_pb

from callcenter.dispatch import AGENT_NAME, parse_dispatch
from callcenter.ids import new_call_id
from callcenter.outcomes import CallOutcome
from doubles.livekit_server import LiveKitDouble, TwirpFailure
from orchestration.defs.dialing.controls import ControlAction, apply_control, hang_up
from orchestration.defs.dialing.dialer import DialingError
from orchestration.defs.dialing.ledger import AttemptStatus, CampaignState, DialStore
from orchestration.defs.dialing.planner import SkipReason
from tests.dialing.conftest import FakeClock, campaign, catalog, lk_client, make_tick, ny_contacts, write_report


def dispatched(double: LiveKitDouble):
    return [parse_dispatch(r.message.metadata) for r in double.calls("AgentDispatchService", "CreateDispatch")]


def end_call(double: LiveKitDouble, call_id: str) -> None:
    """livekit-server closes a room once the call is over."""
    double.rooms.pop(call_id, None)
    double.dispatches.pop(call_id, None)


async def test_dials_up_to_campaign_concurrency_with_validated_metadata(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=3, transfer_number="+12125550199", outbound_trunk="ST_out")
    store.replace_contacts(camp.id, ny_contacts(5))
    async with lk_client(livekit_double) as lk:
        result = await make_tick(store, catalog(camp), lk, bucket, clock).run()

    assert result.dialed[camp.id] == 3
    calls = livekit_double.calls("AgentDispatchService", "CreateDispatch")
    assert [c.message.agent_name for c in calls] == [AGENT_NAME] * 3
    assert all(c.claims["video"]["roomAdmin"] and c.claims["video"]["room"] == c.message.room for c in calls)
    requests = dispatched(livekit_double)
    assert sorted(r.contact_id for r in requests) == ["c-0001", "c-0002", "c-0003"]
    # The contact list's name and own columns travel to the agent's script.
    assert {r.contact_id: (r.contact_name, r.contact_fields) for r in requests}["c-0002"] == (
        "Contact 2",
        {"policy": "P-2"},
    )
    ledger = {a.call_id: a for a in store.attempts()}
    for call, req in zip(calls, requests, strict=True):
        a = ledger[call.message.room]  # room name = call id = ledger key
        assert (req.call_id, req.attempt_id, req.phone_number) == (a.call_id, a.attempt_id, a.phone_number)
        assert (req.persona, req.sip_trunk_id, req.caller_id, req.transfer_number) == (
            "renewals",
            "ST_out",
            "+12125550100",
            "+12125550199",
        )
        assert a.status is AttemptStatus.DISPATCHED and a.dispatch_id.startswith("AD_")
    assert result.plans[camp.id].skip_counts == {"capacity": 2}


async def test_open_calls_hold_capacity_until_their_reports_close_them(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=2)
    store.replace_contacts(camp.id, ny_contacts(4))
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        await tick.run()
        clock.advance(timedelta(minutes=1))
        second = await tick.run()
        assert second.dialed[camp.id] == 0
        for a in store.attempts([AttemptStatus.DISPATCHED]):
            write_report(bucket, a.call_id, CallOutcome.ANSWERED, clock.now)
            end_call(livekit_double, a.call_id)
        clock.advance(timedelta(minutes=1))
        third = await tick.run()
    assert third.sweep.closed == {"answered": 2}
    assert third.dialed[camp.id] == 2
    assert sorted(r.contact_id for r in dispatched(livekit_double)) == ["c-0001", "c-0002", "c-0003", "c-0004"]


async def test_global_cap_counts_every_campaign_and_inbound_calls(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    a, b = campaign(id="alpha", max_concurrent_calls=5), campaign(id="beta", max_concurrent_calls=5)
    store.replace_contacts("alpha", ny_contacts(5))
    store.replace_contacts("beta", ny_contacts(5, start=10))
    inbound = new_call_id()
    livekit_double.rooms[inbound] = room_pb.Room(sid="RM_in", name=inbound)  # an inbound call in progress
    async with lk_client(livekit_double) as lk:
        result = await make_tick(store, catalog(a, b), lk, bucket, clock, global_limit=7).run()
    assert result.global_live == 1
    assert (result.dialed["alpha"], result.dialed["beta"]) == (5, 1)
    assert len(livekit_double.calls("AgentDispatchService", "CreateDispatch")) == 6


@pytest.mark.parametrize(
    ("outcome", "sip", "backoff"),
    [
        (CallOutcome.BUSY, 486, timedelta(minutes=15)),
        (CallOutcome.NO_ANSWER, 480, timedelta(hours=2)),
        (CallOutcome.FAILED, 503, timedelta(minutes=30)),
        (CallOutcome.VOICEMAIL, 200, timedelta(hours=24)),
        (CallOutcome.DECLINED, 603, None),
        (CallOutcome.WRONG_NUMBER, 404, None),
    ],
)
async def test_sip_outcome_closes_the_attempt_and_sets_the_retry(
    sqlite_store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock, outcome, sip, backoff
) -> None:
    store = sqlite_store
    camp = campaign(max_attempts=3)
    store.replace_contacts(camp.id, ny_contacts(1))
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        await tick.run()
        (first,) = store.attempts()
        write_report(bucket, first.call_id, outcome, clock.now, sip_status_code=sip)
        end_call(livekit_double, first.call_id)
        clock.advance(timedelta(minutes=1))
        after = await tick.run()
        closed = store.attempt_by_call(first.call_id)
        assert closed.status is AttemptStatus.CLOSED and closed.outcome is outcome and closed.sip_status_code == sip
        assert after.dialed[camp.id] == 0
        if backoff is None:
            assert after.plans[camp.id].skip_counts == {"completed": 1}
            clock.advance(timedelta(days=3))
            assert (await tick.run()).dialed[camp.id] == 0
            return
        assert after.plans[camp.id].skip_counts == {"backoff": 1}
        clock.advance(backoff - timedelta(minutes=2))
        assert (await tick.run()).dialed[camp.id] == 0
        clock.advance(timedelta(minutes=2))
        retry = await tick.run()
    assert retry.dialed[camp.id] == 1
    assert [r.attempt_id for r in dispatched(livekit_double)][1] != first.attempt_id
    assert sorted(a.attempt_number for a in store.attempts()) == [1, 2]


async def test_do_not_call_request_mid_call_suppresses_the_number_everywhere(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    renewals, winback = campaign(id="renewals", max_concurrent_calls=1), campaign(id="winback", max_concurrent_calls=1)
    store.replace_contacts("renewals", ny_contacts(1))
    store.set_campaign_state("winback", CampaignState.PAUSED, "starts later", clock.now)
    store.replace_contacts("winback", ny_contacts(1))  # the same person in another campaign
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(renewals, winback), lk, bucket, clock)
        await tick.run()
        (a,) = store.attempts()
        write_report(bucket, a.call_id, CallOutcome.ANSWERED, clock.now, do_not_call=True)
        end_call(livekit_double, a.call_id)
        store.set_campaign_state("winback", CampaignState.ACTIVE, "resumed", clock.now)
        clock.advance(timedelta(minutes=1))
        result = await tick.run()
    assert result.sweep.do_not_call == ["+12125550001"]
    assert store.is_do_not_call("+12125550001")
    assert result.plans["winback"].skip_counts == {"do_not_call": 1}
    assert len(livekit_double.calls("AgentDispatchService", "CreateDispatch")) == 1


async def test_pause_resume_and_a_pause_landing_mid_tick(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=10)
    store.replace_contacts(camp.id, ny_contacts(6))
    apply_control(store, camp.id, ControlAction.PAUSE, "operator", clock.now)
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        tick.settings = tick.settings.__class__(global_limit=100, parallelism=1)
        paused = await tick.run()
        assert paused.dialed[camp.id] == 0 and paused.plans[camp.id].skip_counts == {"campaign_paused": 6}
        apply_control(store, camp.id, ControlAction.RESUME, "operator", clock.now)

        default = livekit_double._h_AgentDispatchService_CreateDispatch

        def pause_after_two(req, claims):
            if len(livekit_double.calls("AgentDispatchService", "CreateDispatch")) == 2:
                store.set_campaign_state(camp.id, CampaignState.PAUSED, "operator, mid-tick", clock.now)
            return default(req, claims)

        livekit_double.on("AgentDispatchService", "CreateDispatch", pause_after_two)
        resumed = await tick.run()
    assert resumed.dialed[camp.id] == 2
    assert resumed.not_dialed == {f"{camp.id}:campaign_paused": 4}


async def test_stop_hangs_up_live_calls(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=2)
    store.replace_contacts(camp.id, ny_contacts(2))
    async with lk_client(livekit_double) as lk:
        await make_tick(store, catalog(camp), lk, bucket, clock).run()
        live = apply_control(store, camp.id, ControlAction.STOP, "complaint", clock.now)
        assert len(live) == 2
        await hang_up(lk, live)
    assert sorted(r.message.room for r in livekit_double.calls("RoomService", "DeleteRoom")) == sorted(live)
    assert store.campaign_state(camp.id)[0] is CampaignState.STOPPED


async def test_a_refused_dispatch_fails_the_tick_and_burns_no_attempt(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=3)
    store.replace_contacts(camp.id, ny_contacts(3))

    def refuse(_req, _claims):
        raise TwirpFailure("not_found", "no worker registered for agent call-center-agent", 404)

    livekit_double.on("AgentDispatchService", "CreateDispatch", refuse)
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        tick.settings = tick.settings.__class__(global_limit=100, parallelism=1)
        with pytest.raises(DialingError, match="no worker registered"):
            await tick.run()
    assert [a.status for a in store.attempts()] == [AttemptStatus.CANCELLED]
    assert store.history(camp.id) == {}  # the contact stays dialable: nobody's phone rang
    assert store.acquire_lease("dialing-tick", "next", clock.now, 60)  # the lease was released


async def test_dialing_outside_the_window_dials_nobody(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign()
    store.replace_contacts(camp.id, ny_contacts(2, zone="America/Los_Angeles"))  # 07:00 there
    async with lk_client(livekit_double) as lk:
        result = await make_tick(store, catalog(camp), lk, bucket, clock).run()
    assert result.dialed[camp.id] == 0
    assert result.plans[camp.id].skip_counts == {SkipReason.OUTSIDE_CALLING_WINDOW.value: 2}
    assert livekit_double.calls("AgentDispatchService", "CreateDispatch") == []


async def test_overlapping_ticks_dial_once(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=2)
    store.replace_contacts(camp.id, ny_contacts(4))
    assert store.acquire_lease("dialing-tick", "slow-run", clock.now, 120)  # a tick still running
    async with lk_client(livekit_double) as lk:
        with pytest.raises(DialingError, match="holds the ledger lease"):
            await make_tick(store, catalog(camp), lk, bucket, clock).run()
        assert livekit_double.calls("AgentDispatchService", "CreateDispatch") == []
        clock.advance(timedelta(minutes=3))  # the slow run died; its lease expired
        assert (await make_tick(store, catalog(camp), lk, bucket, clock).run()).dialed[camp.id] == 2


async def test_a_5xx_from_livekit_is_unconfirmed_and_never_dialled_again(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    """A 502/504 may come from a proxy after LiveKit created the dispatch: the phone may ring,
    so the attempt is neither cancelled (which would free its number for a second dial) nor resent."""
    camp = campaign(max_concurrent_calls=1)
    store.replace_contacts(camp.id, ny_contacts(1))
    default = livekit_double._h_AgentDispatchService_CreateDispatch

    def created_then_bad_gateway(req, claims):
        default(req, claims)
        raise TwirpFailure("internal", "bad gateway", 502)

    livekit_double.on("AgentDispatchService", "CreateDispatch", created_then_bad_gateway)
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        first = await tick.run()
        (attempt,) = store.attempts()
        assert first.not_dialed == {f"{camp.id}:unconfirmed": 1}
        assert attempt.status is AttemptStatus.SENDING
        livekit_double.on("AgentDispatchService", "CreateDispatch", default)
        clock.advance(timedelta(minutes=2))
        second = await tick.run()  # LiveKit lists the dispatch: recovered, not resent
    assert second.recovered == [attempt.call_id]
    assert len(livekit_double.calls("AgentDispatchService", "CreateDispatch")) == 1
    assert store.attempts()[0].status is AttemptStatus.DISPATCHED


async def test_a_stop_landing_while_a_dispatch_is_in_flight_keeps_its_outcome(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    """The stop cancels what was not sent yet; the dispatch already on its way lands, is hung up
    with the live calls, its report closes it, and a resume does not dial the contact again."""
    camp = campaign(max_concurrent_calls=2)
    store.replace_contacts(camp.id, ny_contacts(2))
    default = livekit_double._h_AgentDispatchService_CreateDispatch
    live: list[str] = []

    def stop_mid_dispatch(req, claims):
        if not live:
            live.extend(apply_control(store, camp.id, ControlAction.STOP, "complaint", clock.now))
        return default(req, claims)

    livekit_double.on("AgentDispatchService", "CreateDispatch", stop_mid_dispatch)
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        tick.settings = tick.settings.__class__(global_limit=100, parallelism=1)
        result = await tick.run()
        (sent,) = [a for a in store.attempts() if a.status is AttemptStatus.DISPATCHED]
        assert live == [sent.call_id]  # the stop lists the call on its way, to hang it up
        assert result.dialed[camp.id] == 1 and result.not_dialed == {f"{camp.id}:campaign_stopped": 1}
        assert len(livekit_double.calls("AgentDispatchService", "CreateDispatch")) == 1
        write_report(bucket, sent.call_id, CallOutcome.ANSWERED, clock.now)
        apply_control(store, camp.id, ControlAction.RESUME, "reviewed", clock.now)
        clock.advance(timedelta(minutes=1))
        await tick.run()
    closed = next(a for a in store.attempts() if a.attempt_id == sent.attempt_id)
    assert closed.status is AttemptStatus.CLOSED and closed.outcome == "answered"
    rooms = [
        parse_dispatch(c.message.metadata).contact_id
        for c in livekit_double.calls("AgentDispatchService", "CreateDispatch")
    ]
    assert rooms.count(sent.contact_id) == 1  # answered: never dialled again


async def test_an_unreadable_report_times_out_instead_of_holding_the_slot(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    camp = campaign(max_concurrent_calls=1)
    store.replace_contacts(camp.id, ny_contacts(1))
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        await tick.run()
        (attempt,) = store.attempts()
        report = write_report(bucket, attempt.call_id, CallOutcome.ANSWERED, clock.now)
        name = next(b.name for b in bucket.list_prefix("recordings/") if attempt.call_id in b.name)
        bucket.client.bucket(bucket.bucket_name).blob(name).upload_from_string(b"{not json")
        clock.advance(timedelta(minutes=5))
        early = await tick.run()
        assert early.sweep.unreadable and early.sweep.timed_out == []
        clock.advance(timedelta(hours=3))  # past max_call_duration
        late = await tick.run()
    assert late.sweep.timed_out == [report.call_id]
    closed = next(a for a in store.attempts() if a.attempt_id == attempt.attempt_id)
    assert closed.status is AttemptStatus.CLOSED and closed.outcome == "failed" and "unreadable" in closed.note


async def test_a_slow_tick_does_not_dial_past_the_end_of_the_calling_window(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    """Planned at 20:59:30 local time; by the second dial the clock has passed 21:00."""
    camp = campaign(max_concurrent_calls=10)
    store.replace_contacts(camp.id, ny_contacts(3))
    clock.now = clock.now.replace(hour=1, minute=59, second=30)  # 20:59:30 in New York (EST)
    default = livekit_double._h_AgentDispatchService_CreateDispatch

    def slow(req, claims):
        clock.advance(timedelta(seconds=40))
        return default(req, claims)

    livekit_double.on("AgentDispatchService", "CreateDispatch", slow)
    async with lk_client(livekit_double) as lk:
        tick = make_tick(store, catalog(camp), lk, bucket, clock)
        tick.settings = tick.settings.__class__(global_limit=100, parallelism=1)
        result = await tick.run()
    assert result.plans[camp.id].selected and len(result.plans[camp.id].selected) == 3
    assert result.dialed[camp.id] == 1
    assert result.not_dialed == {f"{camp.id}:outside_calling_window": 2}


async def test_a_do_not_call_request_on_an_inbound_call_stops_outbound_dials(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    """A contact calls in and asks to be taken off the list: no attempt of ours carries that
    report, yet the next tick must not dial the number."""
    from callcenter.outcomes import CallDirection

    camp = campaign(max_concurrent_calls=5)
    store.replace_contacts(camp.id, ny_contacts(2))
    inbound = new_call_id(clock.now - timedelta(minutes=3))
    write_report(
        bucket,
        inbound,
        CallOutcome.ANSWERED,
        clock.now - timedelta(minutes=1),
        do_not_call=True,
        direction=CallDirection.INBOUND,
        from_number="+1 212-555-0001",  # as the caller id arrived: normalised to the list's E.164
    )
    write_report(
        bucket,
        new_call_id(clock.now - timedelta(minutes=2)),
        CallOutcome.ANSWERED,
        clock.now,
        direction=CallDirection.INBOUND,
        from_number="+12125550002",
    )  # no request: still dialled
    async with lk_client(livekit_double) as lk:
        result = await make_tick(store, catalog(camp), lk, bucket, clock).run()
    assert store.is_do_not_call("+12125550001") and not store.is_do_not_call("+12125550002")
    assert result.sweep.do_not_call == ["+12125550001"]
    assert result.plans[camp.id].skip_counts == {"do_not_call": 1} and result.dialed[camp.id] == 1
    dialled = [
        parse_dispatch(c.message.metadata).contact_id
        for c in livekit_double.calls("AgentDispatchService", "CreateDispatch")
    ]
    assert dialled == ["c-0002"]


async def test_a_number_listed_by_two_campaigns_is_called_by_one_at_a_time(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    first, second = campaign(id="renewals"), campaign(id="winback")
    store.replace_contacts(first.id, ny_contacts(1))
    store.replace_contacts(second.id, ny_contacts(1))  # the same person, in another list
    async with lk_client(livekit_double) as lk:
        result = await make_tick(store, catalog(first, second), lk, bucket, clock).run()
    assert result.dialed[first.id] + result.dialed[second.id] == 1
    assert result.not_dialed == {"winback:number_in_call": 1}
    assert len(livekit_double.calls("AgentDispatchService", "CreateDispatch")) == 1


@pytest.mark.parametrize(
    ("utc_time", "deadline_utc"),
    [
        ((1, 58), (2, 0)),  # 20:58 in New York: the window closes first (21:00 local = 02:00 UTC)
        ((15, 0), (15, 5)),  # 10:00 there: a dispatch queued for a worker goes stale after 5 minutes
    ],
)
async def test_each_dispatch_carries_the_moment_the_agent_must_give_up(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock, utc_time, deadline_utc
) -> None:
    camp = campaign()
    store.replace_contacts(camp.id, ny_contacts(1))
    clock.now = clock.now.replace(hour=utc_time[0], minute=utc_time[1], second=0, microsecond=0)
    async with lk_client(livekit_double) as lk:
        await make_tick(store, catalog(camp), lk, bucket, clock).run()
    (create,) = livekit_double.calls("AgentDispatchService", "CreateDispatch")
    dial_by = parse_dispatch(create.message.metadata).dial_by
    assert dial_by == clock.now.replace(hour=deadline_utc[0], minute=deadline_utc[1])


async def test_unconfirmed_dispatches_hold_fleet_capacity_within_the_tick(
    store: DialStore, livekit_double: LiveKitDouble, bucket, clock: FakeClock
) -> None:
    """Two campaigns, a fleet limit of 2: the first campaign's two dispatches time out (they
    may ring), so the second campaign dials nobody in the same tick."""
    first, second = campaign(id="renewals"), campaign(id="winback")
    store.replace_contacts(first.id, ny_contacts(2))
    store.replace_contacts(second.id, ny_contacts(2, start=10))
    default = livekit_double._h_AgentDispatchService_CreateDispatch

    def bad_gateway_for_renewals(req, claims):
        if parse_dispatch(req.metadata).campaign_id == "renewals":
            default(req, claims)
            raise TwirpFailure("unavailable", "upstream timed out", 504)
        return default(req, claims)

    livekit_double.on("AgentDispatchService", "CreateDispatch", bad_gateway_for_renewals)
    async with lk_client(livekit_double) as lk:
        result = await make_tick(store, catalog(first, second), lk, bucket, clock, global_limit=2).run()
    assert result.not_dialed["renewals:unconfirmed"] == 2
    assert result.dialed["winback"] == 0 and result.plans["winback"].skip_counts == {"capacity": 2}
