"""Who reads which customer (issue 20 item 11): an agent reads only the customer of their
current contact, other agents' notes are redacted, supervisors' reads are audited, and the
OpenAPI schema marks stored names and notes as untrusted plain text.

Real server (the callpath rig), real call from the demo customer to a baresip agent."""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

import pytest

from callcenter import events as ev
from callcenter.config import PrivacyCfg
from callcenter.privacy import AccessDenied, Privacy, Reader
from tests.support.peers import watch

GRACE = "+441632960001"  # demo customer, the caller
ALAN = "+441632960002"  # another demo customer
OTHERS_NOTE = "caller is <b>angry</b> about the refund"


def past_call(cid: str, agent: str, notes: str, t0: float) -> list[dict[str, Any]]:
    """A finished call from Grace handled by ``agent``, as event dicts for the CRM store."""

    def e(kind: str, ts: float, **fields: Any) -> dict[str, Any]:
        return {"type": kind, "event_id": f"{cid}-{kind}", "contact_id": cid, "ts": ts, **fields}

    return [
        e("ContactArrived", t0, channel="voice", ani=GRACE, dnis="5000", service="main",
          from_addr=f"sip:{GRACE}@127.0.0.1", to_addr="sip:5000@127.0.0.1", attributes={}),
        e("ContactQueued", t0 + 5, queue="sales", priority=1, skills={}),
        e("AgentOffered", t0 + 6, agent_id=agent, queue="sales", reservation_id=f"r-{cid}"),
        e("ContactConnected", t0 + 8, agent_id=agent),
        e("ContactEnded", t0 + 60, reason="hangup", ended_by="caller"),
        e("WrapUpCompleted", t0 + 70, agent_id=agent, disposition="resolved", notes=notes),
    ]


def lookup(number: str) -> str:
    return f"/api/customers/lookup?kind=phone&value={quote(number)}"


async def seed_history(rig: Any) -> None:
    await rig.center.crm.apply_events(past_call("past-1002", "1002", OTHERS_NOTE, 1_000.0))
    await rig.center.crm.apply_events(past_call("past-1003", "1003", "my own note", 2_000.0))


async def test_agent_reads_only_the_current_customer_and_not_other_agents_notes(rig: Any) -> None:
    await seed_history(rig)
    log = watch(rig)
    desk = await rig.desktop("1003")  # Carol: sales
    # No current contact: refused, for a known customer and an unknown number alike (no oracle).
    r = await desk.get(lookup(GRACE))
    assert r.status_code == 403, r.text
    assert (await desk.get(lookup("+441632960999"))).status_code == 403

    phone = await rig.phone("1003")
    caller = await rig.caller()
    call = await caller.call("5000", rig.sip, ani=GRACE)
    call.media.send_dtmf("3")  # sales
    offer = await desk.wait(lambda m: m["type"] == "offer")
    shown = {e["id"]: e for e in offer["recent"]}
    assert shown["past-1002"]["notes"] == "" and shown["past-1002"]["notes_redacted"] is True
    assert shown["past-1003"]["notes"] == "my own note"
    # The offer showed another agent's interaction: that read is audited.
    audit = await log.wait(ev.CustomerRecordRead, reason="offer")
    assert (audit.reader, audit.role, audit.other_agents) == ("1003", "agent", ["1002"])

    await phone.wait_event(lambda e: e.get("type") == "CALL_ESTABLISHED")
    r = await desk.get(lookup(GRACE))
    assert r.status_code == 200, r.text
    found = {e["id"]: e for e in r.json()["recent"]}
    assert found["past-1002"]["notes"] == "" and found["past-1002"]["notes_redacted"] is True
    assert found["past-1003"]["notes"] == "my own note"
    assert OTHERS_NOTE not in r.text
    # Still only the customer of the current contact.
    assert (await desk.get(lookup(ALAN))).status_code == 403
    await call.hangup()


async def test_supervisor_reads_everything_and_each_read_is_audited(
    rig: Any, caplog: pytest.LogCaptureFixture
) -> None:
    await seed_history(rig)
    log = watch(rig)
    sup = await rig.desktop("supervisor")
    with caplog.at_level(logging.INFO, logger="callcenter.audit"):
        r = await sup.get(lookup(GRACE))
        assert r.status_code == 200, r.text
        audit = await log.wait(ev.CustomerRecordRead, reader="supervisor")
    assert {e["id"]: e["notes"] for e in r.json()["recent"]}["past-1002"] == OTHERS_NOTE
    assert audit.role == "supervisor" and audit.customer_id == r.json()["customer"]["id"]
    assert set(audit.interactions) >= {"past-1002", "past-1003"}
    line = next(rec for rec in caplog.records if rec.name == "callcenter.audit")
    assert (line.reader, line.customer_id, line.reason) == ("supervisor", audit.customer_id, "supervisor")


async def test_openapi_marks_stored_names_and_notes_as_untrusted_text(rig: Any) -> None:
    import httpx

    async with httpx.AsyncClient(base_url=rig.http) as http:
        schema = (await http.get("/openapi.json")).json()
    schemas = schema["components"]["schemas"]
    for model, field in (("CustomerOut", "name"), ("InteractionOut", "notes"), ("InteractionOut", "subject")):
        prop = schemas[model]["properties"][field]
        assert prop["type"] == "string" and prop["contentMediaType"] == "text/plain", (model, field)
        assert "escape" in prop["description"]
    op = schema["paths"]["/api/customers/lookup"]["get"]
    assert "403" in op["responses"]
    ok = op["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("CustomerLookupOut")


def test_policy_scopes_history_and_notes_per_role() -> None:
    recent = [{"id": "a", "agent_id": "1001", "notes": "mine"},
              {"id": "b", "agent_id": "1002", "notes": "theirs"},
              {"id": "c", "agent_id": "", "notes": ""}]  # fmt: skip
    agent, sup = Reader("1001", "agent"), Reader("boss", "supervisor")
    events: list[ev.Event] = []
    strict = Privacy(PrivacyCfg.model_validate({"agent": {"history": "own", "notes": "none"}}), events.append)
    redacted = {"id": "a", "agent_id": "1001", "notes": "", "notes_redacted": True}
    assert strict.history(agent, recent) == [redacted]
    assert strict.history_owner(agent) == "1001" and strict.history_owner(sup) is None
    blind = Privacy(PrivacyCfg.model_validate({"agent": {"history": "none"}}), events.append)
    assert blind.history(agent, recent) == []
    assert strict.history(sup, recent) == recent
    with pytest.raises(AccessDenied):
        strict.check_lookup(agent, "cust-1", serving=["cust-2"])
    assert strict.check_lookup(agent, "cust-1", serving=["cust-1"]) == "lookup"
    # An agent's read of only their own interactions is not audited; a supervisor's always is.
    strict.read(agent, "cust-1", "lookup", recent[:1])
    assert events == []
    quiet = Privacy(PrivacyCfg(log_reads=False), events.append)
    quiet.read(sup, "cust-1", "supervisor", recent)
    assert events == []
    strict.read(sup, "cust-1", "supervisor", recent)
    assert [e.type for e in events] == ["CustomerRecordRead"]
