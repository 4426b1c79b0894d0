"""Callback requests kept over a restart: saved while they wait, dropped once connected or
over, and restored into routing with their first creation time (their place)."""

from __future__ import annotations

import time
from typing import Any

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.contacts.callback_keeper import CallbackKeeper
from callcenter.contacts.contact import Contact, Phase
from callcenter.contacts.core import ContactCore
from routing import Router, build_config
from tests.contacts.fake_channel import FakeChannel

AGENTS = [{"id": "a1", "name": "Ann", "skills": {"english": 5}, "capacity": {"voice": 1}}]


class MemoryStore:
    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}

    async def save_pending_callback(self, contact_id: str, created_at: float, data: dict[str, Any]) -> None:
        first = self.rows.get(contact_id, {}).get("created_at", created_at)
        self.rows[contact_id] = {"contact_id": contact_id, "created_at": first, "data": data}

    async def drop_pending_callback(self, contact_id: str) -> None:
        self.rows.pop(contact_id, None)

    async def pending_callbacks(self) -> list[dict[str, Any]]:
        return sorted(self.rows.values(), key=lambda r: r["created_at"])


def center(clock: list[float]) -> tuple[ContactCore, FakeChannel]:
    router = Router(build_config({"skills": {"english": {}}}, {"queues": {"q": {}}}, AGENTS),
                    clock=lambda: clock[0])  # fmt: skip
    core = ContactCore(router=router, bus=EventBus(), crm=None)
    channel = FakeChannel()
    core.add_channel("voice", channel)
    return core, channel


async def test_waiting_request_is_saved_then_restored_in_its_place_and_dropped_when_over() -> None:
    clock = [1000.0]
    core, _ = center(clock)
    store = MemoryStore()
    keeper = CallbackKeeper(core, store, clock=lambda: clock[0])
    contact = Contact("cb", "voice", "+441632960002", "5000", "main", callback_number="+441632960002")
    core.arrive(contact, ev.ContactArrived(contact_id="cb", channel="voice"))
    core.move(contact, Phase.SELF_SERVICE)
    core.enqueue(contact, "q", 0, {"english": 1}, phase=Phase.CALLBACK)
    await keeper._on_event(ev.ContactQueued(contact_id="cb", queue="q"))
    [row] = await store.pending_callbacks()
    assert row["data"]["callback_number"] == "+441632960002"
    saved_at = row["created_at"]
    assert abs(saved_at - time.time()) < 5  # the router's time as wall-clock time

    # The server restarts 60 s later: a new router whose clock knows nothing of the old one.
    later = [50.0]
    core2, _ = center(later)
    restored: list[Contact] = []
    store.rows["cb"]["created_at"] = saved_at - 60  # as if asked a minute before the restart
    keeper2 = CallbackKeeper(core2, store, clock=lambda: later[0])
    assert await keeper2.restore(restored.append) == ["cb"]
    back = core2.contacts["cb"]
    assert (back.phase, back.queue, back.callback_number) == (Phase.CALLBACK, "q", "+441632960002")
    assert restored == [back]
    assert abs(core2.router.tasks["cb"].created - (later[0] - 60)) < 5  # its place: a minute old

    core2.fail(back, "callback_failed")  # over: no longer kept
    await keeper2._on_event(ev.ContactEnded(contact_id="cb", reason="callback_failed"))
    assert await store.pending_callbacks() == []
