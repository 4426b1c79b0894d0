"""The contact core with a real router and a recording channel: offer, present (screen-pop
first), accept, wrap-up, withdraw, abandon, transfer, and the domain errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.contacts.contact import Contact, Phase
from callcenter.contacts.core import ContactCore
from callcenter.contacts.errors import Invalid, InvalidState, NotFound
from routing import Router, build_config
from tests.contacts.fake_channel import FakeChannel

AGENTS = [
    {"id": "a1", "name": "Ann", "skills": {"english": 5}, "capacity": {"voice": 1, "web": 3}},
    {"id": "a2", "name": "Bo", "skills": {"english": 5}, "capacity": {"voice": 1, "web": 3}},
]
LIFECYCLE = (
    ev.ContactQueued, ev.AgentOffered, ev.OfferRejected, ev.ContactConnected, ev.ContactTransferred,
    ev.ContactAbandoned, ev.ContactEnded, ev.WrapUpStarted, ev.WrapUpCompleted,
)  # fmt: skip


class Rig:
    def __init__(self) -> None:
        self.bus = EventBus()
        self.events: list[ev.Event] = []
        self.order: list[str] = []  # when the desk got the offer vs when present() returned
        self.bus.subscribe_inline("log", self.events.append)
        self.bus.subscribe_inline("desk", self.desk, [ev.AgentOffered])
        queues = {"q": {}, "r": {"dispositions": ["fixed", "not_fixed"]}}  # q: the settings' defaults
        router = Router(build_config({"skills": {"english": {}}}, {"queues": queues}, AGENTS))
        self.core = ContactCore(router=router, bus=self.bus, crm=None, kept_skills={"english"})
        self.channel = FakeChannel()
        self.core.add_channel("voice", self.channel)

    def desk(self, event: ev.Event) -> list[asyncio.Future[None]]:
        """Like the desk feed: a future that resolves once the screen-pop is 'written'."""
        written: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def write() -> None:
            self.order.append("screen-pop written")
            written.set_result(None)

        asyncio.get_running_loop().call_soon(write)
        return [written]

    def ready(self, *agents: str) -> None:
        for agent_id in agents:
            self.core.route(self.core.router.set_softphone, agent_id, True, agents=(agent_id,))
            self.core.route(self.core.router.login, agent_id, ready=True, agents=(agent_id,))

    def arrive(self, cid: str = "c1") -> Contact:
        contact = Contact(cid, "voice", "+441632960001", "5000", "main")
        self.core.arrive(contact, ev.ContactArrived(contact_id=cid, channel="voice"))
        self.core.move(contact, Phase.SELF_SERVICE)
        return contact

    def lifecycle(self, cid: str = "c1") -> list[str]:
        return [e.type for e in self.events if isinstance(e, LIFECYCLE) and e.contact_id == cid]

    async def offered(self, agent: str = "a1", queue: str = "q") -> Contact:
        self.ready(agent)
        contact = self.arrive()
        self.core.enqueue(contact, queue, 0, {"english": 1})
        assert contact.phase is Phase.QUEUED and contact.offer is not None  # routing offered at once
        assert await self.core.present(contact, contact.offer)
        return contact


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    yield r
    r.core.close()


async def test_offer_is_shown_before_present_returns_then_accept_talk_and_wrap_up(rig: Rig) -> None:
    rig.ready("a1")
    contact = rig.arrive()
    rig.core.enqueue(contact, "q", 0, {"english": 1})
    assert rig.channel.calls[:2] == [("waiting", "c1"), ("present", "c1")]
    offer = rig.channel.offers[0]
    assert offer.agent_id == "a1" and rig.core.agent_contact == {"a1": "c1"}

    assert await rig.core.present(contact, offer)
    rig.order.append("present returned")  # the channel alerts the agent only now
    assert rig.order == ["screen-pop written", "present returned"]
    assert contact.phase is Phase.OFFERED

    with pytest.raises(InvalidState):
        rig.core.accept("c1", "a2")  # not offered to a2
    with pytest.raises(NotFound):
        rig.core.accept("nobody", "a1")
    assert rig.core.accept("c1", "a1") is contact
    rig.core.connect(contact, "a1")
    assert rig.core.connected_contact("a1") is contact and contact.offer is None

    rig.core.end_connected(contact, "caller", "remote_bye")
    assert contact.phase is Phase.WRAP_UP
    assert "c1" not in rig.core.contacts and rig.core.wrap_ups["a1"] is contact
    assert ("forget", "c1") in rig.channel.calls
    # Queue q names no dispositions: the settings' defaults apply; others are refused, also in a draft.
    assert "sale" in rig.core.dispositions("a1") and "fixed" not in rig.core.dispositions("a1")
    for refused in ("fixed", ""):
        with pytest.raises(Invalid, match="disposition"):
            rig.core.submit_wrap_up("a1", refused, "notes")
    with pytest.raises(Invalid):
        rig.core.save_draft("a1", "c1", "fixed", "notes")
    rig.core.save_draft("a1", "c1", "", "half typed")  # a draft may have no disposition yet
    assert contact.phase is Phase.WRAP_UP
    rig.core.submit_wrap_up("a1", "sale", "notes")
    assert contact.phase is Phase.ENDED and rig.core.wrap_ups == {}
    assert rig.lifecycle() == ["ContactQueued", "AgentOffered", "ContactConnected", "ContactEnded",
                               "WrapUpStarted", "WrapUpCompleted"]  # fmt: skip
    with pytest.raises(InvalidState, match="wrap-up"):
        rig.core.submit_wrap_up("a1", "sale", "")


async def test_withdrawn_offer_goes_back_to_the_queue_and_is_not_presented(rig: Rig) -> None:
    contact = await rig.offered()
    offer = contact.offer
    assert offer is not None
    rig.core.withdraw_offer(contact, "rona")
    assert contact.phase is Phase.QUEUED and contact.offer is None and contact.agent_id is None
    assert ("withdraw", "c1") in rig.channel.calls and rig.core.agent_contact == {}
    rejected = [e for e in rig.events if isinstance(e, ev.OfferRejected)]
    assert [(e.agent_id, e.reason) for e in rejected] == [("a1", "rona")]
    assert not await rig.core.present(contact, offer)  # a stale offer is not shown again
    assert contact.phase is Phase.QUEUED


async def test_abandon_while_offered_withdraws_the_offer_and_ends_once(rig: Rig) -> None:
    contact = await rig.offered()
    rig.channel.gone.add("c1")
    rig.core.abandon(contact, "remote_bye", "caller")
    assert contact.phase is Phase.ENDED and "c1" not in rig.core.contacts
    assert rig.lifecycle() == ["ContactQueued", "AgentOffered", "ContactAbandoned", "OfferRejected",
                               "ContactEnded"]  # fmt: skip
    abandoned = next(e for e in rig.events if isinstance(e, ev.ContactAbandoned))
    assert abandoned.where == "ringing"
    assert str(rig.core.router.agent_state("a1")) == "available"


async def test_transfer_to_a_queue_requeues_with_the_language_skill_only(rig: Rig) -> None:
    contact = await rig.offered()
    rig.core.accept("c1", "a1")
    rig.core.connect(contact, "a1")
    contact.skills = {"english": 1, "billing": 3}
    with pytest.raises(NotFound):
        await rig.core.transfer("a1", "queue:nowhere")
    with pytest.raises(NotFound):
        await rig.core.transfer("a1", "agent:nobody")
    with pytest.raises(InvalidState):
        await rig.core.transfer("a1", "agent:a1")
    await rig.core.transfer("a1", "queue:r")
    assert ("release_agent", "c1") in rig.channel.calls
    assert contact.queue == "r" and contact.skills == {"english": 1}
    assert contact.phase is Phase.QUEUED and contact.connected_at is None
    # The transferring agent's part gets a wrap-up; routing does not hold them for it.
    assert rig.lifecycle()[-3:] == ["ContactTransferred", "ContactQueued", "WrapUpStarted"]
    assert rig.core.wrap_ups["a1"] is contact and not rig.core.drafts["a1"].routed
    with pytest.raises(InvalidState, match="no connected call"):
        await rig.core.transfer("a1", "queue:q")


async def test_a_queue_with_its_own_dispositions_takes_only_those(rig: Rig) -> None:
    """Also after a transfer to another queue: the agent's part is of the queue they served."""
    contact = await rig.offered(queue="r")
    rig.core.accept("c1", "a1")
    rig.core.connect(contact, "a1")
    await rig.core.transfer("a1", "queue:q")  # the agent's wrap-up starts; the caller waits in q
    assert contact.queue == "q"
    assert rig.core.dispositions("a1") == ["fixed", "not_fixed"]
    with pytest.raises(Invalid):
        rig.core.submit_wrap_up("a1", "sale", "")
    rig.core.submit_wrap_up("a1", "fixed", "")


async def test_transfer_out_starts_the_agents_wrap_up_while_the_contact_goes_on(rig: Rig) -> None:
    contact = await rig.offered()
    rig.core.accept("c1", "a1")
    rig.core.connect(contact, "a1")
    await rig.core.transfer("a1", "tel:+441632960999")
    assert rig.channel.calls[-1] == ("transfer_out", "sip:+441632960999@example.test")
    assert contact.phase is Phase.TRANSFERRING and rig.core.wrap_ups["a1"] is contact
    transferred = next(e for e in rig.events if isinstance(e, ev.ContactTransferred))
    assert transferred.target == "sip:+441632960999@example.test"
    rig.core.submit_wrap_up("a1", "escalated", "")
    assert contact.phase is Phase.TRANSFERRING  # the agent's work is done, the call is not
    assert rig.lifecycle()[-3:] == ["ContactTransferred", "WrapUpStarted", "WrapUpCompleted"]


async def test_hold_publishes_only_when_the_channel_held(rig: Rig) -> None:
    contact = await rig.offered()
    rig.core.accept("c1", "a1")
    rig.core.connect(contact, "a1")
    await rig.core.set_hold("a1", True)
    await rig.core.set_hold("a1", True)  # already held: nothing to do
    rig.channel.hold_takes = False  # the call ended while the re-INVITE was out
    await rig.core.set_hold("a1", False)
    held = [e.on_hold for e in rig.events if isinstance(e, ev.ContactHeld)]
    assert held == [True]
    assert [c for c in rig.channel.calls if c[0] in ("hold", "resume")] == [("hold", "c1"), ("resume", "c1")]


async def test_agent_state_changes_and_queue_figures_are_events(rig: Rig) -> None:
    rig.ready("a1")
    states = [(e.agent_id, e.new) for e in rig.events if isinstance(e, ev.AgentStateChanged)]
    assert states[-1] == ("a1", "available")
    figures = asyncio.get_running_loop().create_future()
    rig.bus.subscribe_inline("figures", lambda e: figures.set_result(e), [ev.QueueFigures])
    event = await asyncio.wait_for(figures, 5)
    assert {q["queue"] for q in event.queues} == {"q", "r"}
