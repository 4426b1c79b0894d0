"""Event dicts shaped like callcenter.events.Event.as_dict(), for crm_bridge tests.

crm_bridge must not import callcenter, and neither do its tests: the shapes
here mirror callcenter/events.py field for field.
"""

from __future__ import annotations

import itertools
from typing import Any

_ids = itertools.count(1)


def ev(type_: str, contact_id: str, ts: float, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "event_id": f"e{next(_ids):08d}", "contact_id": contact_id, "ts": ts, **fields}


def answered_call(
    cid: str, ani: str = "+441632960001", t0: float = 1_000.0, agent: str = "a1"
) -> list[dict[str, Any]]:
    """IVR → queue → one rejected offer → answered → hold → transfer → second agent → wrap-up."""
    return [
        ev(
            "ContactArrived",
            cid,
            t0,
            channel="voice",
            direction="inbound",
            ani=ani,
            dnis="+441632000100",
            service="support",
            from_addr=f"sip:{ani}@127.0.0.1",
            to_addr="sip:100@127.0.0.1",
            customer_id=None,
            attributes={},
        ),
        ev("FlowEntered", cid, t0 + 0.5, flow="main", language="en"),
        ev("PromptPlayed", cid, t0 + 0.6, step="welcome", text="Welcome", audio="", interrupted=False),
        ev(
            "IvrInputCollected",
            cid,
            t0 + 4,
            step="menu",
            name="choice",
            value="2",
            how="dtmf",
            confidence=1.0,
        ),
        ev("BranchTaken", cid, t0 + 4.1, step="menu", target="support_q", reason="choice=2"),
        ev("IvrCompleted", cid, t0 + 5, outcome="queued", path=("welcome", "menu"), data={"choice": "2"}),
        ev("ContactQueued", cid, t0 + 5, queue="support", priority=1, skills={"en": 1}),
        ev(
            "AgentOffered",
            cid,
            t0 + 9,
            agent_id="a9",
            queue="support",
            reservation_id="r1",
            explanation="best idle",
        ),
        ev("OfferRejected", cid, t0 + 15, agent_id="a9", reservation_id="r1", reason="rona"),
        ev("AgentOffered", cid, t0 + 16, agent_id=agent, queue="support", reservation_id="r2"),
        ev("ContactConnected", cid, t0 + 18, agent_id=agent),
        ev("ContactHeld", cid, t0 + 30, agent_id=agent, on_hold=True),
        ev("ContactHeld", cid, t0 + 40, agent_id=agent, on_hold=False),
        ev("ContactTransferred", cid, t0 + 60, from_agent=agent, target="agent:a2"),
        ev("ContactConnected", cid, t0 + 62, agent_id="a2"),
        ev("ContactEnded", cid, t0 + 100, reason="hangup", ended_by="caller"),
        ev("WrapUpCompleted", cid, t0 + 120, agent_id="a2", disposition="resolved", notes="reset password"),
    ]


def abandoned_call(cid: str, ani: str = "+441632960002", t0: float = 2_000.0) -> list[dict[str, Any]]:
    return [
        ev(
            "ContactArrived",
            cid,
            t0,
            channel="voice",
            ani=ani,
            dnis="+441632000100",
            service="sales",
            attributes={},
        ),
        ev("ContactQueued", cid, t0 + 1, queue="sales", priority=0, skills={}),
        ev("ContactAbandoned", cid, t0 + 31, waited_s=30.0, where="queue"),
        ev("ContactEnded", cid, t0 + 31, reason="hangup", ended_by="caller"),
    ]


def email_contact(
    cid: str, sender: str = "Ada <Ada@Example.com>", t0: float = 3_000.0
) -> list[dict[str, Any]]:
    return [
        ev(
            "ContactArrived",
            cid,
            t0,
            channel="email",
            direction="inbound",
            ani="",
            dnis="",
            service="support",
            from_addr=sender,
            to_addr="support@example.org",
            attributes={
                "subject": "Where is my order?",
                "body": "Order ORD-1001 please",
                "message_id": "<m1@example.com>",
            },
        ),
        ev("ContactQueued", cid, t0 + 1, queue="email", priority=0, skills={}),
        ev("ContactConnected", cid, t0 + 100, agent_id="a3"),
        ev("ContactEnded", cid, t0 + 400, reason="replied", ended_by="agent"),
        ev("WrapUpCompleted", cid, t0 + 410, agent_id="a3", disposition="answered", notes="sent tracking"),
    ]
