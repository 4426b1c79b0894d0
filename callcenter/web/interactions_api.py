"""Interaction search and the record view over HTTP, for supervisors and agents.

    GET /api/interactions?channel=&customer_id=&agent_id=&queue=&outcome=&since=&until=&limit=
    GET /api/interactions/{id}      the unified record with its event timeline

Supervisors search everything; an agent searches and opens only the interactions they
handled (``agent_id`` is theirs; anyone else's is 403). On top of that the privacy
policy (``callcenter/privacy.py``, server.yaml ``privacy``) applies as it does to a
customer lookup: ``history: none`` shows nothing, and notes the reader may not see are
emptied (``notes_redacted: true``) in the record and in its timeline's events. Reads
that show a customer's interactions are audited like lookups (reason ``search`` or
``record``). ``since``/``until``: ISO 8601 or epoch seconds, against the record's
``sort_ts``. Found on ``app.state.interactions`` (set by Center); without it, 503.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from callcenter.privacy import AccessDenied, Privacy, Reader
from callcenter.whatif import parse_time
from crm_bridge.store import CrmStore

router = APIRouter(prefix="/api/interactions", tags=["interactions"])
_bearer = HTTPBearer(auto_error=False)
MAX_LIMIT = 500
HIDDEN = ("pushed_hash",)  # store bookkeeping, not part of the record


class InteractionReader:
    """The interactions a reader may see, as the privacy policy shows them."""

    def __init__(self, crm: CrmStore, privacy: Privacy) -> None:
        self.crm = crm
        self.privacy = privacy

    def _own_only(self, reader: Reader, agent_id: str) -> str:
        """The agent filter for ``reader``: an agent's own id, whatever they asked for."""
        if reader.role == "supervisor":
            return agent_id
        if agent_id and agent_id != reader.subject:
            raise AccessDenied("agents may search only their own interactions")
        return reader.subject

    def _audit(self, reader: Reader, reason: str, shown: list[dict[str, Any]]) -> None:
        by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for row in shown:
            if row.get("customer_id"):
                by_customer[str(row["customer_id"])].append(row)
        for customer_id, rows in by_customer.items():
            self.privacy.read(reader, customer_id, reason, rows, rows[0]["id"] if len(rows) == 1 else "")

    async def search(self, reader: Reader, *, agent_id: str = "", **filters: Any) -> list[dict[str, Any]]:
        found = await self.crm.search_interactions(agent_id=self._own_only(reader, agent_id), **filters)
        shown = self.privacy.history(reader, [dict(r) for r in found])
        self._audit(reader, "search", shown)
        return shown

    async def record(self, reader: Reader, contact_id: str) -> dict[str, Any] | None:
        """``{"record": ..., "timeline": [...]}``, None if there is no such interaction."""
        record = await self.crm.interaction(contact_id)
        if record is None:
            return None
        if reader.role != "supervisor" and record["agent_id"] != reader.subject:
            raise AccessDenied("agents may open only their own interactions")
        shown = self.privacy.history(reader, [{k: v for k, v in record.items() if k not in HIDDEN}])
        if not shown:
            raise AccessDenied("your role may not read interaction history (server.yaml privacy)")
        timeline = await self.crm.timeline(contact_id)
        if shown[0].get("notes_redacted"):  # the wrap-up event carries the same notes
            timeline = [{**e, "payload": {**e["payload"], "notes": ""}} if e["payload"].get("notes") else e
                        for e in timeline]  # fmt: skip
        self._audit(reader, "record", shown)
        return {"record": shown[0], "timeline": timeline}


def _reader(
    request: Request, cred: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> tuple[InteractionReader, Reader]:
    p = request.app.state.auth.verify(cred.credentials) if cred else None
    if p is None:
        raise HTTPException(401, "missing or invalid token", {"WWW-Authenticate": "Bearer"})
    service = getattr(request.app.state, "interactions", None)
    if service is None:
        raise HTTPException(503, "interaction records are not available on this server")
    return service, Reader(p.subject, p.role)


Who = Annotated[tuple[InteractionReader, Reader], Depends(_reader)]


def _time(value: str | None, *, end: bool = False) -> float | None:
    try:
        return parse_time(value, end=end) if value else None
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None


@router.get("")
async def search(
    who: Who,
    channel: Annotated[str, Query(max_length=16)] = "",
    customer_id: Annotated[str, Query(max_length=64)] = "",
    agent_id: Annotated[str, Query(max_length=128)] = "",
    queue: Annotated[str, Query(max_length=128)] = "",
    outcome: Annotated[str, Query(max_length=32)] = "",
    since: Annotated[str | None, Query(max_length=40, description="ISO 8601 or epoch seconds")] = None,
    until: Annotated[str | None, Query(max_length=40, description="ISO 8601 or epoch seconds")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
) -> dict[str, Any]:
    """Interaction summaries matching every filter given, newest first (agents: their own)."""
    service, reader = who
    t0, t1 = _time(since), _time(until, end=True)
    if t0 is not None and t1 is not None and t1 <= t0:
        raise HTTPException(422, "'until' must come after 'since'")
    # AccessDenied is a ContactError: the app answers it 403 (callcenter/web/backend.py).
    rows = await service.search(reader, channel=channel, customer_id=customer_id, agent_id=agent_id,
                                queue=queue, outcome=outcome, since=t0, until=t1, limit=limit)  # fmt: skip
    return {"interactions": rows}


@router.get("/{contact_id}")
async def record(who: Who, contact_id: str) -> dict[str, Any]:
    """One interaction's unified record and its event timeline (agents: their own)."""
    service, reader = who
    if len(contact_id) > 64:
        raise HTTPException(422, "contact id too long")
    found = await service.record(reader, contact_id)
    if found is None:
        raise HTTPException(404, "no such interaction")
    return found
