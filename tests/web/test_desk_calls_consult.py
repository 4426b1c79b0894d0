"""Mute, consultation (warm transfer) and three-way conference with real SIP peers (issue 19).

Every party is a SIP user agent of ours on loopback that plays its own tone and keeps what it
receives: the customer (500 Hz) calls in, agent Carol's phone (1100 Hz) and agent Bob's phone
(1700 Hz) are bound to their agents' SIP users, and "a number" is a phone reached through
``callbacks.dial_uri`` (1700 Hz as well: it is the third party there). Who hears whom is
checked at each step by the tones' share of what each phone received (tests/monitoring/tones.py);
the record's segments and its ``consultations`` are checked at the end. In process and with
the legs in a media worker."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest

from callcenter import events as ev
from callcenter.sip.bindings import Binding
from callcenter.sip.calls import Call
from tests.monitoring.tones import AGENT_HZ, CUSTOMER_HZ, SUPERVISOR_HZ, Ears, heard, rms, tone
from tests.support.peers import Caller, watch
from tests.support.polling import eventually
from tests.support.rig import CustomerPhone, callback_rig

C, A, X = CUSTOMER_HZ, AGENT_HZ, SUPERVISOR_HZ  # customer, agent, the consulted party
GRACE = "+441632960001"
OTHER = "+441632960999"
_ids = itertools.count(1)


class TonePhone(CustomerPhone):
    """A SIP phone that answers every call at once (or refuses it with ``reject``), plays
    ``hz`` and keeps what it hears."""

    def __init__(self, caller: Caller, hz: float, reject: int | None = None) -> None:
        super().__init__(caller, reject)
        self.hz = hz
        self.ears = Ears()
        self.current: Call | None = None

    async def _incoming(self, call: Call) -> None:
        await self.calls.put(call)
        if self.reject is not None:
            await call.reject(self.reject)
            return
        await call.answer()
        self.current = call
        call.media.on_audio = self.ears
        talking = asyncio.ensure_future(call.media.play(tone(self.hz, 1.0), loop=True))
        await call.ended.wait()
        await talking


async def tone_phone(
    rig: Any, hz: float, *, agent: str | None = None, reject: int | None = None
) -> TonePhone:
    caller = Caller()
    await caller.start()
    rig.callers.append(caller)
    phone = TonePhone(caller, hz, reject)
    if agent is not None:  # the agent's registered phone, bound as the browser phone's gateway binds
        now = time.time()
        await rig.center.registrar.add_binding(Binding(
            aor=agent, uri=f"sip:{agent}@127.0.0.1:{phone.port}", expires_at=now + 3600,
            call_id=f"tone-phone-{next(_ids)}", cseq=1, source=("127.0.0.1", phone.port), transport="udp",
            registered_at=now))  # fmt: skip
        await eventually(lambda: rig.center.router.agents[agent].softphone, what=f"{agent}'s phone")
    return phone


async def setup(rig_factory: Any, media_workers: int = 1) -> tuple[Any, TonePhone, TonePhone, TonePhone]:
    """Carol's and Bob's phones, the number's phone (reached through callbacks.dial_uri)."""
    number_caller = Caller()
    await number_caller.start()
    number = TonePhone(number_caller, X)
    rig = await callback_rig(rig_factory, number, media_workers=media_workers)
    rig.callers.append(number_caller)
    carol = await tone_phone(rig, A, agent="1003")
    bob = await tone_phone(rig, X, agent="1002")
    return rig, carol, bob, number


async def customer_to_carol(rig: Any, log: Any) -> tuple[Any, Ears, str]:
    seen = len(log.events)
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    ears = Ears()
    call.media.on_audio = ears
    call.media.send_dtmf("3")  # sales: Carol
    queued = await eventually(lambda: next((e for e in log.events[seen:] if isinstance(e, ev.ContactQueued)),
                                           None), 30, what="the call queued")  # fmt: skip
    cid = queued.contact_id
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1003", timeout=40)
    call.data["talking"] = asyncio.ensure_future(call.media.play(tone(C, 1.0), loop=True))
    return call, ears, cid


async def record_of(rig: Any, cid: str, ready: Any) -> dict[str, Any]:
    async def get() -> Any:
        await rig.center.bus.drain()
        await rig.center.crm_events.flush()
        rec = await rig.center.crm.interaction(cid)
        return rec if rec is not None and ready(rec) else None

    return await eventually(get, 20, what="the record")


@pytest.mark.parametrize("media_workers", [1, 2], ids=["media1", "media2"])
async def test_mute_then_warm_transfer_to_an_agent(rig_factory: Any, media_workers: int) -> None:
    rig, carol, bob, _number = await setup(rig_factory, media_workers)
    log = watch(rig)
    desk = await rig.desktop("1003")
    bob_desk = await rig.desktop("1002", ready=False)  # signed in, not ready (reason login)
    call, ears, cid = await customer_to_carol(rig, log)
    await ears.expect(lambda w: heard(w) == {A})
    await carol.ears.expect(lambda w: heard(w) == {C})

    # Mute: the customer hears nothing of Carol; Carol still hears the customer. Then unmute.
    r = await desk.post("/api/agent/mute", {"muted": True})
    assert r.status_code == 200, r.text
    await desk.wait(lambda m: m.get("type") == "mute" and m["muted"] is True)
    await ears.expect(lambda w: rms(w) < 50)
    await carol.ears.expect(lambda w: heard(w) == {C})
    r = await desk.get("/api/agent/contacts")
    assert r.json()["contacts"][0]["muted"] is True
    r = await desk.post(f"/api/contacts/{cid}/mute", {"muted": False})
    assert r.status_code == 200, r.text
    await desk.wait(lambda m: m.get("type") == "mute" and m["muted"] is False)
    await ears.expect(lambda w: heard(w) == {A})

    # Refusals: a queue with nobody free (Bob is not ready); yourself; nothing to complete yet.
    r = await desk.post(f"/api/contacts/{cid}/consult", {"target": "queue:support"})
    assert r.status_code == 409 and "nobody in support is free" in r.json()["detail"]
    r = await desk.post(f"/api/contacts/{cid}/consult", {"target": "agent:1003"})
    assert r.status_code == 409
    r = await desk.post(f"/api/contacts/{cid}/consult/complete")
    assert r.status_code == 409 and "no consultation" in r.json()["detail"]

    # Consult Bob: the customer holds with music, Carol and Bob talk privately.
    r = await desk.post(f"/api/contacts/{cid}/consult", {"target": "agent:1002"})
    assert r.status_code == 202, r.text
    assert r.json()["label"] == "Bob (1002)" or r.json()["label"].endswith("(1002)")
    await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "talking")
    assert str(rig.center.router.agent_state("1002")) == "not_ready"  # nothing else offered to Bob
    assert rig.center.router.agents["1002"].reason == "consult"
    r = await desk.post("/api/agent/hold", {"on_hold": False})
    assert r.status_code == 409 and "consultation" in r.json()["detail"]
    await carol.ears.expect(lambda w: heard(w) == {X})
    await bob.ears.expect(lambda w: heard(w) == {A})
    await ears.expect(lambda w: not heard(w) & {A, X})  # music, neither agent

    # Cancel: Bob's leg goes, the customer is back with Carol, Bob's state is his own again.
    first = bob.current
    r = await desk.post(f"/api/contacts/{cid}/consult/cancel")
    assert r.status_code == 200, r.text
    await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "over")
    assert first is not None
    await asyncio.wait_for(first.ended.wait(), 10)
    await ears.expect(lambda w: heard(w) == {A})
    await carol.ears.expect(lambda w: heard(w) == {C})
    assert (str(rig.center.router.agent_state("1002")), rig.center.router.agents["1002"].reason) == (
        "not_ready", "login")  # fmt: skip

    # Bob is free now: consult the support queue (that is Bob) and complete: the customer
    # talks to Bob, Carol goes to wrap-up.
    r = await bob_desk.post("/api/agent/state", {"state": "available"})
    assert r.status_code == 200, r.text
    mark = len(desk.messages)
    r = await desk.post(f"/api/contacts/{cid}/consult", {"target": "queue:support"})
    assert r.status_code == 202, r.text
    assert r.json()["target"] == "agent:1002"
    await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "talking", start=mark)
    r = await desk.post(f"/api/contacts/{cid}/consult/complete")
    assert r.status_code == 200, r.text
    await log.wait(ev.ContactConnected, contact_id=cid, agent_id="1002")
    await log.wait(ev.WrapUpStarted, contact_id=cid, agent_id="1003")
    await bob_desk.wait(lambda m: m.get("type") == "connected" and m.get("contact_id") == cid)
    await ears.expect(lambda w: heard(w) == {X})
    await bob.ears.expect(lambda w: heard(w) == {C})
    assert carol.current is not None
    await asyncio.wait_for(carol.current.ended.wait(), 10)  # the server hung up Carol's leg
    assert str(rig.center.router.agent_state("1002")) == "busy"
    r = await desk.post("/api/agent/wrapup", {"disposition": "escalated", "notes": "to Bob"})
    assert r.status_code == 200, r.text

    await call.hangup()
    rec = await record_of(rig, cid, lambda rec: rec["ended_at"] is not None)
    agents = [(s["agent_id"], s["result"]) for s in rec["segments"] if s["kind"] == "agent"]
    assert agents[0] == ("1003", "transferred") and agents[-1][0] == "1002"
    assert rec["agent_id"] == "1002" and rec["outcome"] == "answered"
    transfer = next(s for s in rec["segments"] if s["kind"] == "transfer")
    assert (transfer["from_agent"], transfer["target"]) == ("1003", "agent:1002")
    consults = rec["attributes"]["consultations"]
    assert [(c["target"], c["result"]) for c in consults] == [("agent:1002", "cancelled"),
                                                              ("agent:1002", "completed")]  # fmt: skip
    assert all(c["answered"] for c in consults)


@pytest.mark.parametrize("media_workers", [1, 2], ids=["media1", "media2"])
async def test_conference_with_a_number_then_the_agent_leaves(rig_factory: Any, media_workers: int) -> None:
    rig, carol, _bob, number = await setup(rig_factory, media_workers)
    log = watch(rig)
    desk = await rig.desktop("1003")
    call, ears, cid = await customer_to_carol(rig, log)
    await ears.expect(lambda w: heard(w) == {A})

    r = await desk.post(f"/api/contacts/{cid}/consult/conference")
    assert r.status_code == 409
    r = await desk.post(f"/api/contacts/{cid}/consult", {"target": OTHER})
    assert r.status_code == 202, r.text
    assert r.json()["target"] == f"number:{OTHER}"
    await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "talking")
    await number.ears.expect(lambda w: heard(w) == {A})

    r = await desk.post(f"/api/contacts/{cid}/consult/conference")
    assert r.status_code == 200, r.text
    await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "conference")
    await ears.expect(lambda w: heard(w) == {A, X})
    await carol.ears.expect(lambda w: heard(w) == {C, X})
    await number.ears.expect(lambda w: heard(w) == {C, A})

    # Muted in the conference: neither of the others hears Carol; she hears both.
    r = await desk.post("/api/agent/mute", {"muted": True})
    assert r.status_code == 200, r.text
    await ears.expect(lambda w: heard(w) == {X})
    await number.ears.expect(lambda w: heard(w) == {C})
    await carol.ears.expect(lambda w: heard(w) == {C, X})
    r = await desk.post("/api/agent/mute", {"muted": False})
    await number.ears.expect(lambda w: heard(w) == {C, A})

    # Carol leaves: customer and number stay connected; Carol's wrap-up starts.
    r = await desk.post(f"/api/contacts/{cid}/consult/complete")
    assert r.status_code == 200, r.text
    await log.wait(ev.WrapUpStarted, contact_id=cid, agent_id="1003")
    await ears.expect(lambda w: heard(w) == {X})
    await number.ears.expect(lambda w: heard(w) == {C})
    assert carol.current is not None
    await asyncio.wait_for(carol.current.ended.wait(), 10)  # the server hung up Carol's leg

    await call.hangup()
    r = await desk.post("/api/agent/wrapup", {"disposition": "escalated", "notes": "conference"})
    assert r.status_code == 200, r.text
    rec = await record_of(rig, cid, lambda rec: rec["ended_at"] is not None and rec.get("disposition"))
    (consult,) = rec["attributes"]["consultations"]
    assert consult["result"] == "conference_left"
    assert consult["participants"] == ["customer", "agent:1003", f"number:{OTHER}"]
    assert consult["conference_from"] and consult["answered"]
    assert [s["kind"] for s in rec["segments"]][-1] == "transfer"


async def test_a_declined_or_vanishing_target_brings_the_customer_back(rig_factory: Any) -> None:
    rig, carol, bob, number = await setup(rig_factory)
    log = watch(rig)
    desk = await rig.desktop("1003")
    await rig.desktop("1002", ready=False)
    call, ears, cid = await customer_to_carol(rig, log)
    await ears.expect(lambda w: heard(w) == {A})

    number.reject = 486
    r = await desk.post(f"/api/contacts/{cid}/consult", {"target": OTHER})
    assert r.status_code == 202, r.text
    over = await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "over")
    assert over["reason"] == f"{OTHER} is busy"
    await log.wait(ev.ContactHeld, contact_id=cid, on_hold=False)
    await ears.expect(lambda w: heard(w) == {A})

    # Bob answers, then hangs up: the customer is back with Carol, told on the desk.
    mark = len(desk.messages)
    r = await desk.post(f"/api/contacts/{cid}/consult", {"target": "agent:1002"})
    assert r.status_code == 202, r.text
    await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "talking", start=mark)
    assert bob.current is not None
    mark = len(desk.messages)
    await bob.current.hangup()
    await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "over"
                    and m["reason"].endswith("hung up"), start=mark)  # fmt: skip
    await eventually(lambda: len(log.of(ev.ContactHeld, contact_id=cid, on_hold=False)) == 2, 10)
    await ears.expect(lambda w: heard(w) == {A})
    assert rig.center.router.agents["1002"].reason == "login"

    # The customer hangs up during a consultation: the consulted leg goes too.
    number.reject = None
    mark = len(desk.messages)
    r = await desk.post(f"/api/contacts/{cid}/consult", {"target": OTHER})
    assert r.status_code == 202, r.text
    await desk.wait(lambda m: m.get("type") == "consult" and m["state"] == "talking", start=mark)
    target_leg = number.current
    await call.hangup()
    assert target_leg is not None
    await asyncio.wait_for(target_leg.ended.wait(), 10)
    await log.wait(ev.WrapUpStarted, contact_id=cid, agent_id="1003")
    rec = await record_of(rig, cid, lambda rec: rec["ended_at"] is not None
                          and len(rec["attributes"].get("consultations", [])) == 3)  # fmt: skip
    assert [c["result"] for c in rec["attributes"]["consultations"]] == ["failed:486", "target_left", "ended"]
    assert carol.ears.frames  # Carol's phone carried the call throughout
