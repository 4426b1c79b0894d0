"""Callbacks: a customer who asks to be called back keeps their place in the queue; when an
agent is chosen their softphone rings first, and once they answer the server dials the
customer through ``callbacks.dial_uri``. Here the "trunk" is a second SIP user agent of
ours on loopback that answers (or rejects) like a customer's phone would."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from test_call_cases import SALES, dial, record
from test_call_path import ALAN

from callcenter import events as ev
from tests.support.peers import Caller, watch
from tests.support.rig import CustomerPhone, callback_rig

SUPPORT = "2"
OTHER = "+447700900123"  # an unknown, standard-tier caller


@pytest.fixture
async def customer_factory() -> AsyncIterator[Callable[..., Any]]:
    callers: list[Caller] = []

    async def make(reject: int | None = None) -> CustomerPhone:
        caller = Caller()
        callers.append(caller)
        await caller.start()
        return CustomerPhone(caller, reject)

    yield make
    for caller in callers:
        await caller.stop()


@pytest.mark.parametrize("media_workers", [1, 2], ids=["media1", "media2"])
async def test_callback_keeps_its_place_and_dials_the_customer_when_an_agent_answers(
    rig_factory: Any, customer_factory: Any, media_workers: int
) -> None:
    customer = await customer_factory()
    rig = await callback_rig(rig_factory, customer, media_workers)
    log = watch(rig)
    # Nobody is logged in: the first caller asks to be called back and goes away.
    first, first_q = await dial(rig, log, ALAN, SALES)
    first.media.send_dtmf("2")
    asked = await log.wait(ev.CallbackRequested, contact_id=first_q.contact_id)
    assert asked.number == ALAN
    await asyncio.wait_for(first.ended.wait(), 30)
    assert first.end_reason == "remote_bye"  # the server said goodbye and hung up
    # A second caller queues behind, and stays on the line.
    second, second_q = await dial(rig, log, OTHER, SALES)
    assert rig.center.router.queue_stats("sales").waiting == 2
    assert not log.of(ev.ContactAbandoned) and not log.of(ev.ContactEnded, contact_id=first_q.contact_id)

    # The agent arrives: the callback is first (it kept its place), the agent answers,
    # and only then is the customer dialled, from the number they had called.
    await rig.phone("1003")
    desk = await rig.desktop("1003")
    offered = await log.wait(ev.AgentOffered, agent_id="1003")
    assert offered.contact_id == first_q.contact_id
    pop = await desk.wait(lambda m: m["type"] == "offer")
    assert pop["contact"]["callback_number"] == ALAN
    await desk.wait(lambda m: m["type"] == "dialling" and m["number"] == ALAN)
    leg = await asyncio.wait_for(customer.calls.get(), 20)
    assert leg.dnis == ALAN.lstrip("+")  # {digits} in the dial URI
    assert leg.ani == "5000"  # the number the customer had called
    attempt = await log.wait(ev.CallbackAttempted, contact_id=first_q.contact_id)
    assert (attempt.result, attempt.attempt, attempt.agent_id) == ("answered", 1, "1003")
    await log.wait(ev.ContactConnected, contact_id=first_q.contact_id, agent_id="1003")
    await desk.wait(lambda m: m["type"] == "connected")
    assert rig.center.router.queue_stats("sales").waiting == 1  # the live caller still waits

    # The customer hangs up: the contact ends, the agent goes to wrap-up.
    await leg.hangup()
    ended = await log.wait(ev.ContactEnded, contact_id=first_q.contact_id)
    assert ended.ended_by == "caller"
    rec = await record(rig, first_q.contact_id)
    assert rec["outcome"] == "answered"
    assert rec["callback_number"] == ALAN
    assert [a["result"] for a in rec["attributes"]["callback_attempts"]] == ["answered"]
    assert rec["agent_id"] == "1003"
    assert second.is_active and second_q.contact_id in rig.center.core.contacts


async def test_unanswered_callback_is_retried_then_recorded_as_failed(
    rig_factory: Any, customer_factory: Any
) -> None:
    customer = await customer_factory(reject=486)
    rig = await callback_rig(rig_factory, customer, max_attempts=2, retry_after_s=0)
    log = watch(rig)
    await rig.phone("1003")
    desk = await rig.desktop("1003", ready=False)  # not ready: the caller waits in the queue
    call, queued = await dial(rig, log, ALAN, SALES)
    call.media.send_dtmf("2")
    await log.wait(ev.CallbackRequested, contact_id=queued.contact_id)
    await asyncio.wait_for(call.ended.wait(), 30)
    r = await desk.post("/api/agent/state", {"state": "available"})
    assert r.status_code == 200, r.text

    ended = await log.wait(ev.ContactEnded, contact_id=queued.contact_id, timeout=60)
    assert ended.reason == "callback_failed"
    attempts = log.of(ev.CallbackAttempted, contact_id=queued.contact_id)
    assert [(a.attempt, a.result) for a in attempts] == [(1, "busy"), (2, "busy")]
    assert customer.calls.qsize() == 2  # dialled twice, no more
    await desk.wait(lambda m: m["type"] == "callback_result" and m["result"] == "busy")
    assert rig.center.router.agent_state("1003") == "available"  # not stuck busy
    assert rig.center.router.queue_stats("sales").waiting == 0
    rec = await record(rig, queued.contact_id)
    assert rec["outcome"] == "callback_failed"
    assert [a["result"] for a in rec["attributes"]["callback_attempts"]] == ["busy", "busy"]


async def test_ivr_callback_step_queues_the_request(rig_factory: Any, customer_factory: Any) -> None:
    """The main menu's support branch offers a callback when the wait is long (nobody is
    staffed, so it is): 1 = callback, then '#' = call back the number calling."""
    customer = await customer_factory()
    rig = await callback_rig(rig_factory, customer)
    log = watch(rig)
    call, queued = await dial_support_callback(rig, log)
    asked = await log.wait(ev.CallbackRequested, contact_id=queued.contact_id)
    assert asked.number == ALAN
    await asyncio.wait_for(call.ended.wait(), 30)
    assert not log.of(ev.ContactEnded, contact_id=queued.contact_id)
    assert queued.queue == "support"

    await rig.phone("1002")
    await rig.desktop("1002")
    leg = await asyncio.wait_for(customer.calls.get(), 30)
    await log.wait(ev.ContactConnected, contact_id=queued.contact_id, agent_id="1002")
    await leg.hangup()
    rec = await record(rig, queued.contact_id)
    assert rec["outcome"] == "answered" and rec["callback_number"] == ALAN
    assert rec["attributes"]["ivr_outcome"] == "callback"


async def dial_support_callback(rig: Any, log: Any) -> tuple[Any, ev.ContactQueued]:
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=ALAN)
    arrived = await log.wait(ev.ContactArrived, attributes={"sip_call_id": call.call_id,
                                                            "display": "Test Caller"})  # fmt: skip
    call.media.send_dtmf(SUPPORT)
    await log.wait(ev.BranchTaken, contact_id=arrived.contact_id, target="offer_callback")
    call.media.send_dtmf("1")
    await log.wait(ev.PromptPlayed, contact_id=arrived.contact_id, step="support_callback")
    call.media.send_dtmf("#")
    queued = await log.wait(ev.ContactQueued, contact_id=arrived.contact_id)
    return call, queued
