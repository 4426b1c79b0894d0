"""Interaction search and the record view over HTTP (SQLite and PostgreSQL, the ``store``
fixture), on records built from real event streams: filters, the unified record with its
timeline, agents limited to their own interactions, and the privacy policy's redaction."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from crm_events import abandoned_call, answered_call, email_contact

from callcenter import events as ev
from callcenter.config import PrivacyCfg
from callcenter.privacy import Privacy
from callcenter.web.app import create_app
from callcenter.web.auth import Authenticator, Principal
from callcenter.web.interactions_api import InteractionReader
from crm_bridge.store import CrmStore

ADA = "+441632960001"


async def _client(store: CrmStore, privacy: dict[str, Any] | None = None) -> Any:
    auth = Authenticator({}, {}, ttl_s=600, key="k" * 32)
    app = create_app(None, auth)  # type: ignore[arg-type]  # these routes never touch the backend
    reads: list[ev.Event] = []
    app.state.interactions = InteractionReader(store, Privacy(PrivacyCfg.model_validate(privacy or {}),
                                                              reads.append))  # fmt: skip
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
    client.reads = reads  # type: ignore[attr-defined]
    client.as_ = {who: {"Authorization": f"Bearer {auth.issue(Principal(who, role))}"}  # type: ignore[attr-defined]
                  for who, role in [("boss", "supervisor"), ("a2", "agent"), ("a3", "agent")]}  # fmt: skip
    return client


@pytest.fixture
async def records(store: CrmStore) -> dict[str, str]:
    ada = await store.upsert_customer("Ada", contact_points=[("phone", ADA)])
    events = answered_call("c1", ani=ADA, t0=1_000.0) + abandoned_call("c2", t0=2_000.0) + email_contact("m1")
    await store.apply_events(events)
    return {"ada": ada}


async def test_search_filters_and_record_view(store: CrmStore, records: dict[str, str]) -> None:
    async with await _client(store) as api:
        boss = api.as_["boss"]

        async def ids(**params: Any) -> list[str]:
            r = await api.get("/api/interactions", params=params, headers=boss)
            assert r.status_code == 200, r.text
            return [row["id"] for row in r.json()["interactions"]]

        assert await ids() == ["m1", "c2", "c1"]  # newest first
        assert await ids(channel="email") == ["m1"]
        assert await ids(customer_id=records["ada"]) == ["c1"]
        assert await ids(agent_id="a2") == ["c1"]  # the record's agent: the one it was transferred to
        assert await ids(queue="sales") == ["c2"]
        assert await ids(outcome="abandoned") == ["c2"]
        assert await ids(since="1500", until="2500") == ["c2"]
        assert await ids(limit=1) == ["m1"]
        assert await ids(customer_id="no-such-customer") == []

        r = await api.get("/api/interactions/c1", headers=boss)
        assert r.status_code == 200
        body = r.json()
        assert body["record"]["customer_id"] == records["ada"] and body["record"]["notes"] == "reset password"
        assert "pushed_hash" not in body["record"]
        types = [e["type"] for e in body["timeline"]]
        assert (types[0], types[-1]) == ("ContactArrived", "WrapUpCompleted")
        assert "ContactTransferred" in types
        audited = [e.customer_id for e in api.reads if isinstance(e, ev.CustomerRecordRead)]
        assert audited[-1] == records["ada"]

        assert (await api.get("/api/interactions/nope", headers=boss)).status_code == 404
        bad = await api.get("/api/interactions", params={"since": "yesterday"}, headers=boss)
        assert bad.status_code == 422 and "not a date" in bad.json()["detail"]
        assert (await api.get("/api/interactions", params={"since": "10", "until": "5"}, headers=boss)
                ).status_code == 422  # fmt: skip
        assert (await api.get("/api/interactions", params={"limit": 0}, headers=boss)).status_code == 422
        assert (await api.get("/api/interactions")).status_code == 401


async def test_agents_see_only_their_own(store: CrmStore, records: dict[str, str]) -> None:
    async with await _client(store) as api:
        a2 = api.as_["a2"]
        r = await api.get("/api/interactions", headers=a2)
        assert [row["id"] for row in r.json()["interactions"]] == ["c1"]
        assert r.json()["interactions"][0]["notes"] == "reset password"  # their own notes
        assert (await api.get("/api/interactions", params={"agent_id": "a3"}, headers=a2)).status_code == 403
        assert (await api.get("/api/interactions/c1", headers=a2)).status_code == 200
        refused = await api.get("/api/interactions/m1", headers=a2)
        assert refused.status_code == 403 and "own" in refused.json()["detail"]


async def test_privacy_policy_redacts_notes_and_history(store: CrmStore, records: dict[str, str]) -> None:
    policy = {"supervisor": {"notes": "none"}, "agent": {"history": "none"}}
    async with await _client(store, policy) as api:
        r = await api.get("/api/interactions/c1", headers=api.as_["boss"])
        record, timeline = r.json()["record"], r.json()["timeline"]
        assert record["notes"] == "" and record["notes_redacted"] is True
        wrap_up = next(e for e in timeline if e["type"] == "WrapUpCompleted")
        assert wrap_up["payload"]["notes"] == "" and wrap_up["payload"]["disposition"] == "resolved"
        found = (await api.get("/api/interactions", headers=api.as_["boss"])).json()["interactions"]
        assert all(row["notes"] == "" for row in found)
        a2 = api.as_["a2"]
        assert (await api.get("/api/interactions", headers=a2)).json()["interactions"] == []
        assert (await api.get("/api/interactions/c1", headers=a2)).status_code == 403
