"""Several contacts per agent on the core, with a real router: a desk-accepted channel
(DeskTaskChannel) next to voice, each contact with its own offer, wrap-up and draft, and the
agent-level actions keeping their voice meaning."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.channels.desk_task import DeskTaskChannel
from callcenter.contacts.contact import Contact, Phase
from callcenter.contacts.core import ContactCore
from callcenter.contacts.errors import InvalidState, NotFound
from routing import Router, build_config
from tests.contacts.fake_channel import FakeChannel
from tests.support.polling import eventually

AGENTS = [
    {"id": "a1", "name": "Ann", "skills": {"english": 5}, "capacity": {"voice": 1, "email": 2}},
    {"id": "a2", "name": "Bo", "skills": {"english": 5}, "capacity": {"voice": 1, "email": 2}},
]


class Memo(DeskTaskChannel):
    """A test-only desk channel on routing's email slots."""

    name = "memo"
    routing_channel = "email"

    def view(self, contact: Contact) -> dict[str, Any]:
        return {"text": f"memo {contact.contact_id}"}


class Rig:
    def __init__(self, exclusive: list[str]) -> None:
        self.bus = EventBus()
        self.events: list[ev.Event] = []
        self.bus.subscribe_inline("log", self.events.append)
        queues = {"queues": {"q": {"wrap_up_s": 600}}, "settings": {"exclusive_channels": exclusive}}
        router = Router(build_config({"skills": {"english": {}}}, queues, AGENTS))
        self.core = ContactCore(router=router, bus=self.bus, crm=None)
        self.voice = FakeChannel()
        self.core.add_channel("voice", self.voice)
        self.memo = Memo(self.core)

    def ready(self, *agents: str) -> None:
        for agent_id in agents:
            self.core.route(self.core.router.set_softphone, agent_id, True, agents=(agent_id,))
            self.core.route(self.core.router.login, agent_id, ready=True, agents=(agent_id,))

    async def memo_offered(self, cid: str, agent: str = "a1") -> Contact:
        contact = self.memo.new_contact(ani="grace@example.com", service="support", contact_id=cid)
        await self.memo.receive(contact, "q", skills={"english": 1})
        await eventually(lambda: contact.phase is Phase.OFFERED, 5, what=f"{cid} offered")
        assert contact.offer is not None and contact.offer.agent_id == agent
        return contact

    async def call_connected(self, cid: str, agent: str = "a1") -> Contact:
        contact = Contact(cid, "voice", "+441632960001", "5000", "main")
        self.core.arrive(contact, ev.ContactArrived(contact_id=cid, channel="voice"))
        self.core.move(contact, Phase.SELF_SERVICE)
        self.core.enqueue(contact, "q", 0, {"english": 1})
        offer = contact.offer
        assert offer is not None and offer.agent_id == agent
        assert await self.core.present(contact, offer)
        self.core.accept(cid, agent)
        self.core.connect(contact, agent)
        return contact

    def of(self, kind: type[ev.Event], cid: str) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind) and e.contact_id == cid]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig(exclusive=[])
    yield r
    await r.memo.close()
    r.core.close()


async def test_two_desk_contacts_and_a_call_at_once_each_with_its_own_wrap_up(rig: Rig) -> None:
    rig.ready("a1")
    m1 = await rig.memo_offered("m1")
    m2 = await rig.memo_offered("m2")
    assert [c.contact_id for c in rig.core.live_contacts("a1")] == ["m1", "m2"]
    assert rig.core.agent_contact == {}  # two contacts, no call: no "the" contact of the agent

    await rig.core.accept_offer("a1", "m1")
    await rig.core.accept_offer("a1", "m2")
    assert m1.phase is Phase.CONNECTED and m2.phase is Phase.CONNECTED
    assert rig.of(ev.ContactConnected, "m1")[0].agent_id == "a1"
    assert rig.core.router.agents["a1"].load == {"email": 2}

    call = await rig.call_connected("v1")
    assert rig.core.agent_contact == {"a1": "v1"}  # the agent-level actions mean the call
    assert rig.core.connected_contact("a1") is call
    items = {i["contact_id"]: i for i in rig.core.work_list("a1")}
    assert set(items) == {"m1", "m2", "v1"}
    assert items["m1"]["view"] == {"text": "memo m1"} and items["m1"]["desk_accept"] is True
    assert items["v1"]["view"] == {} and items["v1"]["desk_accept"] is False
    assert items["m2"]["phase"] == "connected" and items["m2"]["channel"] == "memo"

    # Each conversation ends into its own wrap-up, with its own draft.
    rig.core.hangup("a1", "m1")
    rig.core.hangup("a1", "m2")
    rig.core.end_connected(call, "caller", "hangup")
    assert {c.contact_id for c, _ in rig.core.wrap_up_contacts("a1")} == {"m1", "m2", "v1"}
    assert rig.core.wrap_ups["a1"] is call  # the voice desk's form is the call's
    rig.core.save_draft("a1", "m1", "", "notes for m1")
    rig.core.save_draft("a1", "m2", "sale", "notes for m2")
    rig.core.save_draft("a1", "v1", "", "notes for the call")
    assert rig.core.drafts["a1"].notes == "notes for the call"

    rig.core.submit_wrap_up("a1", "resolved", "final m1", "m1")
    (done,) = rig.of(ev.WrapUpCompleted, "m1")
    assert (done.disposition, done.notes, done.timed_out) == ("resolved", "final m1", False)
    rig.core.submit_wrap_up("a1", "resolved", "call done")  # no id: the call's wrap-up
    assert rig.of(ev.WrapUpCompleted, "v1")[0].notes == "call done"
    assert [c.contact_id for c, _ in rig.core.wrap_up_contacts("a1")] == ["m2"]
    assert rig.core.drafts["a1"].notes == "notes for m2"  # now the only one
    assert rig.of(ev.WrapUpCompleted, "m2") == [] and m2.phase is Phase.WRAP_UP


async def test_decline_offers_someone_else_and_never_this_agent_again(rig: Rig) -> None:
    rig.ready("a1")
    m1 = await rig.memo_offered("m1")
    rig.ready("a2")
    rig.core.decline_offer("a1", "m1")
    assert rig.of(ev.OfferRejected, "m1")[0].reason == "declined"
    await eventually(lambda: m1.phase is Phase.OFFERED and m1.agent_id == "a2", 5, what="offered to a2")
    assert rig.core.live_contacts("a1") == [] and rig.core.live_contacts("a2") == [m1]
    with pytest.raises(NotFound):  # a1 no longer holds it
        await rig.core.accept_offer("a1", "m1")


async def test_refusals_name_the_problem(rig: Rig) -> None:
    rig.ready("a1")
    await rig.memo_offered("m1")
    with pytest.raises(InvalidState, match="not connected"):
        rig.core.hangup("a1", "m1")  # an offer is declined, not ended
    with pytest.raises(NotFound):
        rig.core.hangup("a2", "m1")  # someone else's contact
    await rig.core.accept_offer("a1", "m1")
    with pytest.raises(InvalidState, match="no offer"):
        await rig.core.accept_offer("a1", "m1")
    with pytest.raises(InvalidState, match="no hold"):
        await rig.core.set_hold("a1", True, "m1")
    assert rig.core.contacts["m1"].on_hold is False  # the refused hold changed nothing
    with pytest.raises(InvalidState, match="queue or an agent"):
        await rig.core.transfer("a1", "tel:+441632960000", "m1")
    rig.core.hangup("a1", "m1")
    await rig.memo_offered("m2")
    await rig.core.accept_offer("a1", "m2")
    rig.core.hangup("a1", "m2")
    with pytest.raises(InvalidState, match="several contacts in wrap-up"):
        rig.core.submit_wrap_up("a1", "resolved", "")


async def test_a_customer_leaving_ends_or_abandons_by_phase(rig: Rig) -> None:
    rig.ready("a1")
    m1 = await rig.memo_offered("m1")
    rig.memo.customer_left(m1)  # while offered: abandoned, the offer withdrawn
    assert m1.phase is Phase.ENDED and rig.of(ev.ContactAbandoned, "m1")[0].where == "ringing"
    assert rig.core.live_contacts("a1") == []
    m2 = await rig.memo_offered("m2")
    await rig.core.accept_offer("a1", "m2")
    rig.memo.customer_left(m2)  # while connected: the agent's wrap-up follows
    assert m2.phase is Phase.WRAP_UP and rig.of(ev.ContactEnded, "m2")[0].ended_by == "customer"


async def test_transfer_of_a_desk_contact_to_a_queue_requeues_it(rig: Rig) -> None:
    rig.ready("a1")
    m1 = await rig.memo_offered("m1")
    await rig.core.accept_offer("a1", "m1")
    rig.ready("a2")
    await rig.core.transfer("a1", "agent:a2", "m1")
    await eventually(lambda: m1.phase is Phase.OFFERED and m1.agent_id == "a2", 5, what="offered to a2")
    assert [c.contact_id for c, _ in rig.core.wrap_up_contacts("a1")] == ["m1"]
    await rig.core.accept_offer("a2", "m1")
    rig.core.submit_wrap_up("a1", "escalated", "passed to Bo", "m1")
    assert rig.of(ev.WrapUpCompleted, "m1")[0].agent_id == "a1" and m1.phase is Phase.CONNECTED


async def test_messages_publish_and_routing_capacity_applies() -> None:
    r = Rig(exclusive=["voice"])  # the default: a call takes the whole agent
    try:
        r.ready("a1")
        m1 = await r.memo_offered("m1")
        message = r.memo.message(m1, direction="in", message_id="x1", author="grace@example.com", text="hi")
        assert message.channel == "memo" and r.events[-1] is message
        await r.core.accept_offer("a1", "m1")
        v = Contact("v1", "voice", "+441632960001", "5000", "main")
        r.core.arrive(v, ev.ContactArrived(contact_id="v1", channel="voice"))
        r.core.move(v, Phase.SELF_SERVICE)
        r.core.enqueue(v, "q", 0, {"english": 1})
        assert v.offer is None and v.phase is Phase.QUEUED  # exclusive voice waits for a free agent
    finally:
        await r.memo.close()
        r.core.close()
