"""Web chat through the real server: the customer's WebSocket (what the widget speaks) and an
agent's desktop (REST + the desk stream), down to the interaction record."""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

import pytest
import websockets

from tests.support import eventually
from tests.webchat.conftest import connected_chat, offers, record_of


async def test_from_self_service_to_the_agent_and_into_the_record(chat_rig: Any, customers: Any) -> None:
    rig = await chat_rig()
    bob = await rig.desktop("1002")  # technical: the support queue
    grace = await customers(rig)
    welcome = await grace.connect()
    assert welcome["type"] == "welcome" and welcome["state"] == "new"
    support = next(t for t in welcome["topics"] if t["id"] == "support")
    assert support["open"] is True
    assert {f["id"] for f in welcome["faq"]} >= {"returns", "delivery"}

    await grace.start_chat()
    # Self-service: an FAQ answer, and her order's status (her email owns ORD-1001).
    n = await grace.send(type="ask", text="returns")
    faq = await grace.wait(lambda m: m["type"] == "line" and m["from"] == "bot", start=n)
    assert "30 days" in faq["text"]
    n = await grace.send(type="say", text="Where is my order ORD-1001?", client_id="c1")
    status = await grace.wait(lambda m: m["type"] == "line" and m["from"] == "bot", start=n)
    assert status["text"] == "Order ORD-1001 (Compiler manuals, 3 volumes) is shipped."

    # Talk to a person: Bob's desk gets the offer with the pre-chat data and what was asked.
    seen = len(bob.messages)
    await grace.send(type="agent")
    offer = await offers(bob, seen)
    cid = offer["contact"]["contact_id"]
    contacts = (await bob.get("/api/agent/contacts")).json()["contacts"]
    item = next(c for c in contacts if c["contact_id"] == cid)
    assert item["channel"] == "chat" and item["phase"] == "offered"
    assert item["view"]["prechat"]["email"] == "grace@example.com"
    assert item["view"]["verified"] is True  # she knew one of her order numbers
    assert [s["kind"] for s in item["view"]["selfservice"]] == ["faq", "order"]
    assert item["customer"]["name"] == "Grace Hopper"

    r = await bob.post(f"/api/contacts/{cid}/accept")
    assert r.status_code == 200, r.text
    joined = await grace.wait(lambda m: m["type"] == "agent")
    assert joined["name"] == "Bob Baker"

    # Both ways; typing shows on the other side.
    n = await grace.send(type="typing", on=True)
    await bob.wait(lambda m: m["type"] == "chat_typing" and m["contact_id"] == cid and m["on"], start=seen)
    missing = "My compiler manual is missing page 3"
    n = await grace.send(type="say", text=missing, client_id="c2")
    await bob.wait(lambda m: m["type"] == "contact_message" and m["text"] == missing)
    r = await bob.post(f"/api/chat/{cid}/typing", {"on": True})
    assert r.status_code == 200
    await grace.wait(lambda m: m["type"] == "typing" and m["on"], start=n)
    r = await bob.post(f"/api/chat/{cid}/messages", {"text": "Sorry about that, a new one is on its way."})
    assert r.status_code == 200, r.text
    line = await grace.wait(lambda m: m["type"] == "line" and m["from"] == "agent")
    assert line["author"] == "Bob Baker" and line["text"] == "Sorry about that, a new one is on its way."
    assert isinstance(line["ts"], float)

    # The agent closes the chat, wraps up; the customer is told.
    r = await bob.post(f"/api/contacts/{cid}/end")
    assert r.status_code == 200, r.text
    await grace.wait(lambda m: m["type"] == "state" and m["state"] == "ended")
    r = await bob.post(f"/api/contacts/{cid}/wrapup", {"disposition": "resolved", "notes": "sent"})
    assert r.status_code == 200, r.text

    async def complete() -> Any:
        rec = await record_of(rig, cid)
        return rec if rec is not None and rec["disposition"] == "resolved" else None

    record = await eventually(complete, 10)
    assert record["channel"] == "chat"
    assert record["customer_id"] == "c-demo-grace-hopper"
    assert record["attributes"]["prechat"]["topic"] == "support"
    assert record["outcome"] == "answered" and record["agent_id"] == "1002"
    assert record["wait_s"] is not None and record["talk_s"] is not None
    said = [(m["direction"], m["meta"]["from"], m["text"]) for m in record["messages"]]
    assert ("in", "customer", "returns") in said
    assert ("out", "bot", status["text"]) in said
    assert ("in", "customer", "My compiler manual is missing page 3") in said
    assert ("out", "agent", "Sorry about that, a new one is on its way.") in said
    agent_line = next(m for m in record["messages"] if m["meta"]["from"] == "agent")
    assert agent_line["author"] == "1002" and agent_line["ts"] > 0  # who and when
    steps = [m["meta"].get("selfservice") for m in record["messages"] if m["meta"]["from"] == "bot"]
    assert steps == ["greeting", "faq", "order"]


async def test_two_chats_at_once_and_the_third_waits(chat_rig: Any, customers: Any) -> None:
    def two_chats(data: dict[str, Any]) -> None:
        for agent in data["agents"]:
            agent["capacity"]["web"] = 2

    rig = await chat_rig(agents=two_chats)
    bob = await rig.desktop("1002")
    first, second, third = [await customers(rig) for _ in range(3)]
    a = await connected_chat(rig, first, bob)
    b = await connected_chat(rig, second, bob)
    assert a != b
    await third.connect()
    await third.start_chat()
    await third.send(type="agent")
    waiting = await third.wait(lambda m: m["type"] == "queue" and m["position"] is not None)
    assert waiting["position"] == 1
    live = [c for c in (await bob.get("/api/agent/contacts")).json()["contacts"] if c["phase"] == "connected"]
    assert sorted(c["contact_id"] for c in live) == sorted([a, b])
    # One chat ends and is wrapped up: the third is offered to Bob.
    seen = len(bob.messages)
    r = await bob.post(f"/api/contacts/{a}/end")
    assert r.status_code == 200
    r = await bob.post(f"/api/contacts/{a}/wrapup", {"disposition": "resolved"})
    assert r.status_code == 200, r.text
    offer = await offers(bob, seen)
    assert offer["contact"]["contact_id"] not in (a, b)


async def test_a_dropped_customer_resumes_and_nothing_is_lost(chat_rig: Any, customers: Any) -> None:
    rig = await chat_rig()
    bob = await rig.desktop("1002")
    grace = await customers(rig)
    cid = await connected_chat(rig, grace, bob)
    await grace.send(type="say", text="first", client_id="k1")
    await grace.wait(lambda m: m["type"] == "ack" and m["client_id"] == "k1")
    last_seq = max(m["seq"] for m in grace.lines())
    await grace.drop()

    # While she is away the agent writes twice; the chat stays connected.
    for text in ("Are you still there?", "Your refund is approved."):
        r = await bob.post(f"/api/chat/{cid}/messages", {"text": text})
        assert r.status_code == 200, r.text
    assert rig.center.core.contacts[cid].phase == "connected"

    welcome = await grace.connect(token=grace.token, last_seq=last_seq)
    assert welcome["state"] == "connected" and welcome["agent"] == "Bob Baker"
    await grace.wait(lambda m: m["type"] == "line" and m["text"] == "Your refund is approved.")
    replayed = [m["text"] for m in grace.lines("agent")]
    assert "Are you still there?" in replayed
    # A line the page was not sure had arrived is sent again with its client id: kept once.
    n = await grace.send(type="say", text="first", client_id="k1")
    dup = await grace.wait(lambda m: m["type"] == "ack" and m["client_id"] == "k1", start=n)
    assert dup.get("duplicate") is True
    firsts = [m for m in rig.center.webchat.session_of(cid).lines if m.text == "first"]
    assert len(firsts) == 1


async def test_rate_limit_and_message_size(chat_rig: Any, customers: Any) -> None:
    def strict(data: dict[str, Any]) -> None:
        data["limits"].update(messages_per_session=3, message_chars=50)

    rig = await chat_rig(webchat=strict)
    grace = await customers(rig)
    await grace.connect()
    await grace.start_chat()
    n = await grace.send(type="say", text="x" * 51, client_id="long")
    err = await grace.wait(lambda m: m["type"] == "error", start=n)
    assert err["code"] == "too_long" and err["client_id"] == "long"
    for i in range(3):
        n = await grace.send(type="say", text=f"hello {i}", client_id=f"ok{i}")
        await grace.wait(lambda m, i=i: m["type"] == "ack" and m["client_id"] == f"ok{i}", start=n)
    n = await grace.send(type="say", text="one too many", client_id="over")
    err = await grace.wait(lambda m: m["type"] == "error", start=n)
    assert err["code"] == "rate_limited" and err["retry_after"] >= 1 and err["client_id"] == "over"
    texts = [line.text for line in rig.center.webchat.sessions[grace.token].lines]
    assert "one too many" not in texts and "x" * 51 not in texts
    # Malformed frames get an answer, and the connection stays usable.
    await grace._ws.send("not json")
    err = await grace.wait(lambda m: m["type"] == "error" and m["code"] == "bad_message")
    n = await grace.send(type="ping")
    await grace.wait(lambda m: m["type"] == "pong", start=n)


async def test_new_chats_per_address_are_limited(chat_rig: Any, customers: Any) -> None:
    rig = await chat_rig(webchat=lambda d: d["limits"].update(sessions_per_ip=2))
    for _ in range(2):
        assert (await (await customers(rig)).connect())["type"] == "welcome"
    refused = await (await customers(rig)).connect()
    assert refused["type"] == "error" and refused["code"] == "rate_limited"


async def test_a_foreign_origin_is_refused(chat_rig: Any, customers: Any) -> None:
    rig = await chat_rig(webchat=lambda d: d.update(allowed_origins=["https://shop.example"]))
    evil = await customers(rig, origin="https://evil.example")
    with pytest.raises(websockets.InvalidStatus) as refused:
        await evil.connect()
    assert refused.value.response.status_code == 403
    shop = await customers(rig, origin="https://shop.example")
    assert (await shop.connect())["type"] == "welcome"
    own = await customers(rig, origin=f"http://127.0.0.1:{rig.center.http_port}")
    assert (await own.connect())["type"] == "welcome"


async def test_an_idle_chat_ends(chat_rig: Any, customers: Any) -> None:
    rig = await chat_rig(webchat=lambda d: d["limits"].update(idle_timeout_s=1))
    grace = await customers(rig)
    await grace.connect()
    await grace.start_chat()
    await grace.wait(lambda m: m["type"] == "state" and m["state"] == "ended", timeout=20)
    cid = next(iter(rig.center.webchat.by_contact), None)
    assert cid is None or rig.center.webchat.by_contact[cid].state == "ended"


async def test_nobody_signed_in_turns_the_widget_into_a_message_form(chat_rig: Any, customers: Any) -> None:
    rig = await chat_rig()  # no agent signed in
    ada = await customers(rig)
    welcome = await ada.connect()
    assert welcome["open"] is False
    assert {t["reason"] for t in welcome["topics"]} == {"no_agents"}
    n = await ada.send(type="offline", name="Ada Lovelace", email="ada@example.com", topic="billing",
                       message="Please call me back about invoice 42.")  # fmt: skip
    sent = await ada.wait(lambda m: m["type"] in ("offline_sent", "error"), start=n)
    assert sent["type"] == "offline_sent", sent
    record = await eventually(lambda: record_of(rig, sent["interaction_id"]), 10)
    assert record["channel"] == "webform"
    assert record["customer_id"] == "c-demo-ada-lovelace"
    assert record["messages"][0]["text"] == "Please call me back about invoice 42."
    assert rig.center.core.contacts[sent["interaction_id"]].phase == "queued"  # waits for an agent


async def test_outside_business_hours_the_widget_is_a_message_form(chat_rig: Any, customers: Any) -> None:
    def closed_today(data: dict[str, Any]) -> None:
        today = dt.datetime.now(dt.UTC).date()
        days = [today + dt.timedelta(days=d) for d in (-1, 0, 1)]  # any time zone's today
        data["services"]["main"]["holidays"] = [d.isoformat() for d in days]

    rig = await chat_rig(services=closed_today)
    await rig.desktop("1002")  # someone is signed in, but the service is closed
    grace = await customers(rig)
    welcome = await grace.connect()
    assert welcome["open"] is False
    assert {t["reason"] for t in welcome["topics"]} == {"closed"}


async def test_the_transcript_goes_out_by_email_when_the_chat_ends(chat_rig: Any, customers: Any) -> None:
    from aiosmtpd.smtp import SMTP

    received: list[Any] = []

    class Sink:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            received.append(envelope)
            return "250 OK"

    relay = await asyncio.get_running_loop().create_server(lambda: SMTP(Sink()), "127.0.0.1", 0)
    port = relay.sockets[0].getsockname()[1]

    def to_the_sink(server: dict[str, Any]) -> None:
        server["email"]["outbound"] = {"relay": {"host": "127.0.0.1", "port": port, "starttls": False,
                                                 "timeout_s": 5}}  # fmt: skip

    try:
        rig = await chat_rig(server=to_the_sink)
        bob = await rig.desktop("1002")
        grace = await customers(rig)
        cid = await connected_chat(rig, grace, bob)
        await bob.post(f"/api/chat/{cid}/messages", {"text": "Your parcel left today."})
        n = await grace.send(type="transcript", email="grace@example.com")
        asked = await grace.wait(lambda m: m["type"] == "transcript", start=n)
        assert asked["state"] == "requested"  # sent when the chat ends
        n = await grace.send(type="end")
        queued = await grace.wait(lambda m: m["type"] == "transcript", start=n)
        assert queued["state"] == "pending"
        await eventually(lambda: received, 20, what="the transcript at the relay")
        mail = received[0].content.decode()
        assert received[0].rcpt_tos == ["grace@example.com"]
        assert "Your parcel left today." in mail and "Bob Baker" in mail
        record = await eventually(lambda: record_of(rig, cid), 10)
        kinds = {m["meta"]["from"] for m in record["messages"]}
        assert {"request", "transcript"} <= kinds
    finally:
        relay.close()
        await relay.wait_closed()
