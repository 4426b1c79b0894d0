"""ContactMessage events fold into the record's ``messages`` (thread / transcript) and
``attachments``, idempotently: any order, duplicates, a message delivered twice."""

from __future__ import annotations

import random
from typing import Any

from crm_events import ev
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_bridge.records import build_record
from crm_bridge.store import CrmStore

FILE = {"name": "invoice.pdf", "size": 1234, "sha256": "ab" * 32, "path": "ab/abab.pdf",
        "content_type": "application/pdf"}  # fmt: skip


def chat(cid: str) -> list[dict[str, Any]]:
    return [
        ev("ContactArrived", cid, 1, channel="chat", ani="grace@example.com", service="support"),
        ev("ContactQueued", cid, 2, queue="support"),
        ev("ContactMessage", cid, 2, direction="in", channel="chat", message_id="m1", author="Grace",
           text="hello"),
        ev("AgentOffered", cid, 3, agent_id="a1", queue="support", reservation_id="r1"),
        ev("ContactConnected", cid, 5, agent_id="a1"),
        ev("ContactMessage", cid, 6, direction="out", channel="chat", message_id="m2", author="a1",
           text="how can I help?"),
        ev("ContactMessage", cid, 7, direction="in", channel="chat", message_id="m3", author="Grace",
           text="see attached", attachments=[FILE], meta={"subject": "bill"}),
        ev("ContactEnded", cid, 9, reason="agent_ended", ended_by="agent"),
        ev("WrapUpCompleted", cid, 10, agent_id="a1", disposition="resolved", notes="sent the bill"),
    ]  # fmt: skip


def test_messages_and_their_attachments_are_on_the_record() -> None:
    rec = build_record("c", chat("c"))
    assert [(m["direction"], m["message_id"], m["text"]) for m in rec["messages"]] == [
        ("in", "m1", "hello"), ("out", "m2", "how can I help?"), ("in", "m3", "see attached")]
    assert rec["messages"][2]["attachments"] == [FILE] and rec["messages"][2]["meta"] == {"subject": "bill"}
    (att,) = rec["attachments"]
    assert att["kind"] == "message" and att["message_id"] == "m3" and att["sha256"] == FILE["sha256"]
    assert rec["outcome"] == "answered" and rec["channel"] == "chat" and rec["flags"] == []


def test_a_message_delivered_twice_is_kept_once_and_flagged() -> None:
    events = chat("c")
    again = ev("ContactMessage", "c", 8, direction="in", channel="chat", message_id="m3", text="see attached")
    rec = build_record("c", [*events, again])
    assert [m["message_id"] for m in rec["messages"]] == ["m1", "m2", "m3"]
    assert rec["flags"] == ["duplicate_message"] and len(rec["attachments"]) == 1


def test_malformed_attachments_are_kept_and_flagged() -> None:
    events = [*chat("c"), ev("ContactMessage", "c", 8, direction="in", channel="chat", message_id="m4",
                             attachments=["not a dict", FILE])]  # fmt: skip
    rec = build_record("c", events)
    assert rec["messages"][-1]["attachments"] == [FILE] and "bad_attachment" in rec["flags"]


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), dup_fraction=st.floats(0, 1))
def test_order_and_duplicates_do_not_change_the_messages(seed: int, dup_fraction: float) -> None:
    events = chat("c")
    expected = build_record("c", events)
    rng = random.Random(seed)
    shuffled = events + [e for e in events if rng.random() < dup_fraction]
    rng.shuffle(shuffled)
    assert build_record("c", shuffled) == expected


async def test_the_store_keeps_the_messages(store: CrmStore) -> None:
    await store.apply_events(chat("s1"))
    row = await store.interaction("s1")
    assert row is not None and [m["message_id"] for m in row["messages"]] == ["m1", "m2", "m3"]
