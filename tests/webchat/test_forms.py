"""``POST /api/web/forms/{form}`` against the real server: JSON and form-encoded posts become
web-form interactions routed to the form's queue; bad input gets a clear answer."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import eventually
from tests.webchat.conftest import record_of

SHOP = "https://shop.example"


async def test_json_and_form_encoded_posts_become_interactions(chat_rig: Any) -> None:
    rig = await chat_rig(webchat=lambda d: d.update(allowed_origins=[SHOP]))
    bob = await rig.desktop("1002")  # technical: the contact form's queue is support
    async with httpx.AsyncClient(base_url=rig.http) as http:
        grace = {"name": "Grace Hopper", "email": "Grace@Example.com", "message": "Page 3 is missing."}
        r = await http.post("/api/web/forms/contact", json=grace)
        assert r.status_code == 201, r.text
        first = r.json()["interaction_id"]
        ada = {"name": "Ada Lovelace", "email": "ada@example.com", "message": "Call me", "newsletter": "yes"}
        r = await http.post("/api/web/forms/contact", headers={"Origin": SHOP}, data=ada)
        assert r.status_code == 201, r.text
        assert r.headers["access-control-allow-origin"] == SHOP  # the shop's page may read the answer
        second = r.json()["interaction_id"]

    offer = await bob.wait(lambda m: m["type"] == "offer" and m["contact"]["channel"] == "webform")
    assert offer["contact"]["contact_id"] in (first, second)
    contacts = (await bob.get("/api/agent/contacts")).json()["contacts"]
    shown = next(c for c in contacts if c["contact_id"] == offer["contact"]["contact_id"])
    assert shown["view"]["form"] == "contact" and "message" in shown["view"]["fields"]

    record = await eventually(lambda: record_of(rig, first), 10)
    assert record["channel"] == "webform" and record["queue"] == "support"
    assert record["customer_id"] == "c-demo-grace-hopper"  # the email, normalised, found her
    assert record["messages"][0]["text"] == "Page 3 is missing."
    assert record["attributes"]["fields"]["email"] == "grace@example.com"
    record = await eventually(lambda: record_of(rig, second), 10)
    assert record["attributes"]["extra"] == {"newsletter": "yes"}  # kept, and flagged
    assert record["attributes"]["flags"] == ["undeclared_fields"]


async def test_bad_posts_get_clear_answers_and_create_nothing(chat_rig: Any) -> None:
    rig = await chat_rig(webchat=lambda d: d["limits"].update(forms_per_ip=4))
    before = len(rig.center.core.contacts)
    async with httpx.AsyncClient(base_url=rig.http) as http:
        r = await http.post("/api/web/forms/contact", json={"name": "X", "email": "not-an-address"})
        assert r.status_code == 422
        assert r.json()["fields"] == {"email": "not an email address", "message": "required"}
        r = await http.post("/api/web/forms/nope", json={"name": "X"})
        assert r.status_code == 404
        json_type = {"Content-Type": "application/json"}
        r = await http.post("/api/web/forms/contact", content=b"{oops", headers=json_type)
        assert r.status_code == 400
        r = await http.post("/api/web/forms/contact", content=b"hi", headers={"Content-Type": "text/plain"})
        assert r.status_code == 415
        r = await http.post("/api/web/forms/contact", headers={"Origin": "https://evil.example"},
                            data={"name": "X", "email": "x@example.com", "message": "m"})  # fmt: skip
        assert r.status_code == 403
        assert len(rig.center.core.contacts) == before
        # forms_per_ip = 4: the 422, 400 and 415 posts counted (an unknown form or a refused
        # origin does not); one more is taken, the next is refused with Retry-After.
        good = {"name": "X", "email": "x@example.com", "message": "m"}
        r = await http.post("/api/web/forms/contact", json=good)
        assert r.status_code == 201, r.text
        r = await http.post("/api/web/forms/contact", json=good)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
