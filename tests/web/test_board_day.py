"""The board's "today" counts on the real event bus: a day is local midnight to midnight
(the server's time zone, not UTC, not routing's 15-minute window), a re-queue is not a
second offer, and occupancy time carries over midnight from the state the agent is in."""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest

from callcenter import events as ev
from callcenter.board_today import TodayFigures, local_midnight
from callcenter.bus import EventBus


@pytest.fixture
def new_york() -> Iterator[None]:
    """The server's local time zone set to one far from UTC, so local and UTC days differ."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "America/New_York"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = before
        time.tzset()


async def test_counts_start_again_at_local_midnight(new_york: None) -> None:
    # 23:00 local on 6 March 2026 (04:00 UTC on the 7th: the UTC day has already turned).
    evening = datetime(2026, 3, 6, 23, 0).timestamp()
    assert local_midnight(evening) == datetime(2026, 3, 6).timestamp()
    now = [evening]
    sent: list[dict[str, Any]] = []
    bus = EventBus()
    today = TodayFigures(
        sent.append, ["sales"], lambda _q: 20.0, {"main": "sales"}.get, {}, clock=lambda: now[0]
    )
    today.attach(bus)

    def at(offset: float, event: ev.Event) -> None:
        bus.publish(dataclasses.replace(event, ts=evening + offset))

    at(0, ev.AgentStateChanged(agent_id="1003", old="offline", new="available"))
    at(5, ev.ContactQueued(contact_id="c1", queue="sales"))
    at(5, ev.ContactQueued(contact_id="c1", queue="sales"))  # back in the queue: not offered twice
    at(10, ev.AgentStateChanged(agent_id="1003", old="available", new="busy"))
    at(10, ev.ContactConnected(contact_id="c1", agent_id="1003"))  # 5 s wait: within 20 s
    at(15, ev.ContactQueued(contact_id="c2", queue="sales"))
    at(45, ev.ContactAbandoned(contact_id="c2", waited_s=30, where="queue"))
    at(70, ev.WrapUpCompleted(contact_id="c1", agent_id="1003", disposition="sale"))
    view = today.view()
    assert view["queues"]["sales"] | {"in_ivr": 0} == {"offered": 2, "answered": 1, "abandoned": 1,
        "answered_within": 1, "service_level": 50.0, "in_ivr": 0}  # fmt: skip
    carol = view["agents"]["1003"]
    assert (carol["handled"], carol["aht_s"], carol["available_s"]) == (1, 60.0, 10.0)
    assert carol["state"] == "busy" and carol["since"] == evening + 10

    # Past local midnight (05:00 UTC): a new day; Carol is still busy, counted from midnight.
    midnight = datetime(2026, 3, 7).timestamp()
    at(3_600 + 60, ev.ContactQueued(contact_id="c3", queue="sales"))
    view = today.view()
    assert view["day_start"] == midnight
    assert view["queues"]["sales"]["offered"] == 1 and view["queues"]["sales"]["answered"] == 0
    carol = view["agents"]["1003"]
    assert (carol["handled"], carol["working_s"], carol["available_s"]) == (0, 0.0, 0.0)
    assert carol["since"] == midnight and carol["state"] == "busy"
    await bus.close()
