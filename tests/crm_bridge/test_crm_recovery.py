"""Crash recovery in the CRM store: records a killed server left open are closed as
``interrupted`` through the normal record/outbox path, once; waiting callbacks are kept."""

from __future__ import annotations

from crm_events import answered_call
from sqlalchemy import select

from crm_bridge.schema import outbox
from crm_bridge.store import CrmStore


async def _pushed(store: CrmStore, contact_id: str) -> list[dict]:
    async with store.engine.connect() as conn:
        rows = await conn.execute(select(outbox.c.payload).where(outbox.c.aggregate_id == contact_id))
        return [r.payload for r in rows]


async def test_open_records_are_closed_interrupted_once_and_pushed(store: CrmStore) -> None:
    up = answered_call("up")[:10]  # connected, then the server was killed: no end
    waiting = answered_call("cb")[:3]  # a callback request the server carries on with
    await store.apply_events([*up, *waiting, *answered_call("done")])
    assert (await store.interaction("up"))["status"] == "open"

    assert await store.close_interrupted(keep={"cb"}) == 1

    rec = await store.interaction("up")
    assert (rec["status"], rec["outcome"], rec["end_reason"]) == ("ended", "interrupted", "server_restart")
    assert rec["ended_at"] == max(e["ts"] for e in up)  # the time of its last event
    assert rec["attributes"]["ended_by"] == "system"
    [pushed] = await _pushed(store, "up")
    assert (pushed["record"]["outcome"], pushed["record"]["status"]) == ("interrupted", "ended")
    assert (await store.interaction("cb"))["status"] == "open"
    assert (await store.interaction("done"))["outcome"] == "answered"

    assert await store.close_interrupted(keep={"cb"}) == 0  # idempotent: nothing changes
    assert len(await _pushed(store, "up")) == 1
    assert (await store.interaction("up"))["version"] == rec["version"]


async def test_pending_callbacks_keep_their_first_creation_time(store: CrmStore) -> None:
    await store.save_pending_callback("a", 100.0, {"queue": "billing", "attempts": 0})
    await store.save_pending_callback("b", 50.0, {"queue": "sales"})
    await store.save_pending_callback("a", 300.0, {"queue": "billing", "attempts": 1})  # a retry
    kept = await store.pending_callbacks()
    assert [(k["contact_id"], k["created_at"], k["data"]) for k in kept] == [
        ("b", 50.0, {"queue": "sales"}), ("a", 100.0, {"queue": "billing", "attempts": 1})]  # fmt: skip
    await store.drop_pending_callback("b")
    await store.drop_pending_callback("b")  # already gone: fine
    assert [k["contact_id"] for k in await store.pending_callbacks()] == ["a"]
