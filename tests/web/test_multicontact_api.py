"""Several contacts per agent on the real server: Carol (1003) takes two contacts of a
test-only desk channel ("memo", tests/web/memo_channel.py) and a real call (SIP caller,
baresip answering) at once; the per-contact HTTP API accepts, declines, ends and wraps up
each one with its own draft, the channel's own route and desk feed work, and the call's
agent-level API keeps meaning the call."""

from __future__ import annotations

from typing import Any

from browser_rig import watch
from memo_channel import memo_queues, wire_memo
from test_desk_page import GRACE

from callcenter import events as ev
from tests.support.polling import eventually


async def contacts(desktop: Any) -> dict[str, dict[str, Any]]:
    r = await desktop.get("/api/agent/contacts")
    assert r.status_code == 200, r.text
    return {i["contact_id"]: i for i in r.json()["contacts"]}


async def test_two_memos_and_a_call_at_once_over_http(rig_factory: Any) -> None:
    rig = await rig_factory(memo_queues)
    memo = wire_memo(rig.center)
    log = watch(rig)
    await rig.phone("1003")  # answers calls automatically
    carol = await rig.desktop("1003")
    bob = await rig.desktop("1002")

    # A memo Carol declines: it is not offered to her again (nobody else serves sales).
    m0 = await memo.arrive("sales", "first")
    await log.wait(ev.AgentOffered, contact_id=m0.contact_id, agent_id="1003")
    r = await carol.post(f"/api/contacts/{m0.contact_id}/decline")
    assert r.status_code == 200, r.text
    assert (await log.wait(ev.OfferRejected, contact_id=m0.contact_id)).reason == "declined"
    assert m0.contact_id not in await contacts(carol)

    m1 = await memo.arrive("sales", "hello from Grace")
    m2 = await memo.arrive("sales", "a second question", ani="ian@example.com")
    for m in (m1, m2):
        await log.wait(ev.AgentOffered, contact_id=m.contact_id, agent_id="1003")
    offer = await carol.wait(lambda m: m["type"] == "offer" and m["contact"]["contact_id"] == m2.contact_id)
    assert offer["contact"]["channel"] == "memo"
    await eventually(lambda: m2.phase == "offered", 10, what="m2 presented")
    items = await contacts(carol)
    assert items[m1.contact_id]["phase"] == "offered" and items[m1.contact_id]["desk_accept"] is True
    assert items[m1.contact_id]["offer_deadline"] is not None
    assert items[m1.contact_id]["view"]["lines"] == ["grace@example.com: hello from Grace"]

    assert (await bob.post(f"/api/contacts/{m1.contact_id}/accept")).status_code == 404  # not Bob's
    for m in (m1, m2):
        r = await carol.post(f"/api/contacts/{m.contact_id}/accept")
        assert r.status_code == 200, r.text
        await log.wait(ev.ContactConnected, contact_id=m.contact_id, agent_id="1003")
    assert (await carol.post(f"/api/contacts/{m1.contact_id}/accept")).status_code == 409  # taken already

    # The channel's own route, and its message reaching Carol's desk feed.
    r = await carol.post(f"/api/memo/{m1.contact_id}/reply", {"text": "on it"})
    assert r.status_code == 200, r.text
    assert (await bob.post(f"/api/memo/{m1.contact_id}/reply", {"text": "x"})).status_code == 404
    line = await carol.wait(lambda m: m["type"] == "contact_message" and m["direction"] == "out")
    assert (line["contact_id"], line["channel"], line["text"]) == (m1.contact_id, "memo", "on it")

    # A call on top: Carol's phone answers; the agent-level API means the call.
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")
    memos = {m1.contact_id, m2.contact_id}
    (connected,) = await eventually(
        lambda: [e for e in log.of(ev.ContactConnected, agent_id="1003") if e.contact_id not in memos],
        30, what="the call connected")  # fmt: skip
    voice_id = connected.contact_id
    items = await contacts(carol)
    assert {i["channel"]: i["phase"] for i in items.values()} == {"memo": "connected", "voice": "connected"}
    assert len(items) == 3
    assert (await carol.get("/api/agent/contact")).json()["contact_id"] == voice_id
    r = await carol.post("/api/agent/hold", {"on_hold": True})
    assert r.status_code == 200 and (await log.wait(ev.ContactHeld, contact_id=voice_id)).on_hold
    r = await carol.post(f"/api/contacts/{m1.contact_id}/hold", {"on_hold": True})
    assert r.status_code == 409 and "no hold" in r.json()["detail"]

    # Each memo ends into its own wrap-up with its own draft.
    for m in (m1, m2):
        r = await carol.post(f"/api/contacts/{m.contact_id}/end")
        assert r.status_code == 200, r.text
        await log.wait(ev.WrapUpStarted, contact_id=m.contact_id, agent_id="1003")
    for m, notes in ((m1, "Grace: sent the manual"), (m2, "Ian: asked for a quote")):
        r = await carol.http.put(f"/api/contacts/{m.contact_id}/wrapup/draft", json={"notes": notes})
        assert r.status_code == 200, r.text
    items = await contacts(carol)
    assert items[m1.contact_id]["phase"] == "wrap_up" and items[m2.contact_id]["phase"] == "wrap_up"
    assert items[m1.contact_id]["wrap_up"]["notes"] == "Grace: sent the manual"
    assert items[m2.contact_id]["wrap_up"]["notes"] == "Ian: asked for a quote"
    assert items[voice_id]["phase"] == "connected"  # the call goes on meanwhile
    r = await carol.post(f"/api/contacts/{m1.contact_id}/wrapup", {"disposition": "bogus"})
    assert r.status_code == 422
    r = await carol.post(f"/api/contacts/{m1.contact_id}/wrapup",
                         {"disposition": "resolved", "notes": "Grace: sent the manual"})  # fmt: skip
    assert r.status_code == 200, r.text
    done = await log.wait(ev.WrapUpCompleted, contact_id=m1.contact_id)
    assert (done.disposition, done.notes) == ("resolved", "Grace: sent the manual")

    # The call ends: its wrap-up is the agent-level one, m2's stays open with its draft.
    await call.hangup()
    await log.wait(ev.WrapUpStarted, contact_id=voice_id)
    r = await carol.post("/api/agent/wrapup", {"disposition": "sale", "notes": "call notes"})
    assert r.status_code == 200, r.text
    assert (await log.wait(ev.WrapUpCompleted, contact_id=voice_id)).notes == "call notes"
    items = await contacts(carol)
    assert list(items) == [m2.contact_id]
    assert items[m2.contact_id]["wrap_up"]["notes"] == "Ian: asked for a quote"

    # The record holds the conversation and the agent's wrap-up.
    async def record() -> Any:
        return await rig.center.crm.interaction(m1.contact_id)

    rec = await eventually(lambda: _wrapped(record), 20, what="m1's record")
    assert rec["channel"] == "memo" and rec["outcome"] == "answered"
    assert rec["notes"] == "Grace: sent the manual"
    assert [(m["direction"], m["text"]) for m in rec["messages"]] == [
        ("in", "hello from Grace"), ("out", "on it")]  # fmt: skip
    assert rec["from_addr"] == "grace@example.com"


async def _wrapped(record: Any) -> Any:
    rec = await record()
    return rec if rec is not None and rec["disposition"] == "resolved" else None
