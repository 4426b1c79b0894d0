"""The desk feed turns the core's events into the desktop and supervisor messages, in the
same step as the publish; the screen-pop's delivery futures go back to the publisher;
domain errors map to the HTTP statuses the API always answered with."""

from __future__ import annotations

from typing import Any

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.contacts.contact import Contact
from callcenter.contacts.errors import IllegalTransition, InvalidState, NotFound, Unavailable
from callcenter.web.backend import http_status
from callcenter.web.desk_feed import DeskFeed
from callcenter.web.hub import Connection, Hub


def queued(conn: Connection) -> list[dict[str, Any]]:
    out = []
    while not conn.queue.empty():
        item = conn.queue.get_nowait()
        assert item is not None
        out.append(item[0])
    return out


async def feed() -> tuple[EventBus, DeskFeed, Connection, Connection]:
    hub = Hub()
    agent, supervisor = Connection("a1", "agent"), Connection("sup", "supervisor")
    hub.add(agent)
    hub.add(supervisor)
    contact = Contact("c1", "voice", "+441632960001", "5000", "main")
    contact.customer = {"name": "Ada", "tier": "gold"}
    desk = DeskFeed(hub, {"c1": contact}.get)
    bus = EventBus()
    desk.attach(bus)
    return bus, desk, agent, supervisor


async def test_offer_is_queued_for_the_desktop_during_publish_with_a_delivery_future() -> None:
    bus, _, agent, supervisor = await feed()
    delivered = bus.publish(ev.AgentOffered(contact_id="c1", agent_id="a1", queue="q", reservation_id="r1",
                                            explanation="best skill"))  # fmt: skip
    (offer,) = queued(agent)  # already on the connection's queue when publish returned
    assert offer["type"] == "offer" and offer["interaction_id"] == "c1"
    assert offer["tier"] == "gold" and offer["routing"] == "best skill"
    assert len(delivered) == 1 and not delivered[0].done()  # resolves when written to the socket
    assert queued(supervisor) == []


async def test_events_become_the_desktop_messages() -> None:
    bus, _, agent, _ = await feed()
    bus.publish(ev.OfferRejected(contact_id="c1", agent_id="a1", reservation_id="r1", reason="rona"))
    bus.publish(ev.ContactConnected(contact_id="c1", agent_id="a1"))
    bus.publish(ev.ContactHeld(contact_id="c1", agent_id="a1", on_hold=True))
    bus.publish(ev.ContactTransferred(contact_id="c1", from_agent="a1", target="queue:q"))
    bus.publish(ev.WrapUpStarted(contact_id="c1", agent_id="a1", ended_by="caller"))
    bus.publish(ev.CallbackDialling(contact_id="c1", agent_id="a1", number="+441632960001", attempt=1))
    bus.publish(ev.CallbackAttempted(contact_id="c1", agent_id="a1", number="+441632960001", attempt=1,
                                     result="busy", retry=True))  # fmt: skip
    bus.publish(ev.ContactEnded(contact_id="c1", reason="remote_bye"))  # the record's, not the desk's
    messages = queued(agent)
    assert [m["type"] for m in messages] == [
        "offer_withdrawn", "connected", "hold", "transferred", "wrapup", "dialling", "callback_result",
    ]  # fmt: skip
    withdrawn, connected, hold, transferred, wrapup, dialling, result = messages
    assert withdrawn["reason"] == "rona" and withdrawn["contact_id"] == "c1"
    assert connected["contact"]["contact_id"] == "c1" and connected["contact"]["channel"] == "voice"
    assert hold == {"type": "hold", "on_hold": True, "contact_id": "c1", "channel": "voice"}
    assert transferred["target"] == "queue:q"
    assert wrapup["ended_by"] == "caller"
    assert dialling["number"] == "+441632960001" and dialling["attempt"] == 1
    assert (result["result"], result["retry"]) == ("busy", True)


async def test_supervisors_get_agent_states_decisions_and_queue_figures() -> None:
    bus, desk, agent, supervisor = await feed()
    bus.publish(ev.AgentStateChanged(agent_id="a1", old="available", new="busy", reason=""))
    bus.publish(ev.RoutingDecided(contact_id="c1", decision={"kind": "offer", "task_id": "c1"}))
    bus.publish(ev.QueueFigures(queues=[{"queue": "q", "waiting": 1}]))
    to_sup = queued(supervisor)
    assert [m["type"] for m in to_sup] == ["agent_state", "decision", "queues"]
    assert to_sup[0]["state"] == "busy" and to_sup[1]["task_id"] == "c1"
    assert to_sup[2]["queues"] == [{"queue": "q", "waiting": 1}]
    assert [m["type"] for m in queued(agent)] == ["agent_state"]
    assert [d["task_id"] for d in desk.recent_decisions] == ["c1"]


def test_domain_errors_map_to_the_http_statuses() -> None:
    assert http_status(NotFound("no queue")) == 404
    assert http_status(InvalidState("no connected call")) == 409
    assert http_status(IllegalTransition("bug")) == 409
    assert http_status(Unavailable("starting")) == 503


def test_only_live_view_events_are_kept_from_the_crm() -> None:
    recorded = set(ev.recorded_types())
    assert {ev.ContactEnded, ev.AgentOffered, ev.CallbackAttempted, ev.AgentStateChanged} <= recorded
    assert not {ev.RoutingDecided, ev.QueueFigures, ev.WrapUpStarted, ev.CallbackDialling} & recorded
