"""``GET /api/web/supervisor``: the web channel for the supervisor board — chats and forms
waiting per queue, and each agent's concurrent web load against their capacity."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, HTTPException

from callcenter.contacts.contact import WAITING
from callcenter.web.auth import Principal
from callcenter.web.channel_api import principal

if TYPE_CHECKING:
    from callcenter.channels.chat import ChatChannel

WEB_CHANNELS = ("chat", "webform")


def web_figures(channel: ChatChannel) -> dict[str, Any]:
    core = channel.core
    router = core.router
    now = time.time()
    web = channel.routing_channel or "web"
    queues: dict[str, dict[str, Any]] = {}
    cfg = channel.webchat.cfg
    names = {t.queue for t in cfg.topics.values()} | {f.queue for f in cfg.forms.values()}
    if cfg.offline_queue:
        names.add(cfg.offline_queue)
    for name in sorted(names):
        stats = router.queue_stats(name, web)
        queues[name] = {"queue": name, "chats_waiting": 0, "forms_waiting": 0, "longest_wait_s": 0.0,
                        "staffed": stats.staffed, "available": stats.available,
                        "ewt_s": stats.ewt_s if stats.ewt_s != float("inf") else None}  # fmt: skip
    chats_by_agent: dict[str, list[str]] = {}
    for contact in core.contacts.values():
        if contact.channel not in WEB_CHANNELS:
            continue
        if contact.phase in WAITING and contact.queue in queues:
            q = queues[contact.queue]
            q["chats_waiting" if contact.channel == "chat" else "forms_waiting"] += 1
            q["longest_wait_s"] = max(q["longest_wait_s"], now - (contact.queued_at or now))
        elif contact.agent_id:
            chats_by_agent.setdefault(contact.agent_id, []).append(contact.contact_id)
    agents = []
    for agent_id, agent in router.agents.items():
        if not agent.capacity.get(web):
            continue
        agents.append({"agent_id": agent_id, "name": agent.name, "state": str(router.agent_state(agent_id)),
                       "web_load": agent.load.get(web, 0), "web_capacity": agent.capacity.get(web, 0),
                       "load": dict(agent.load),
                       "contacts": sorted(chats_by_agent.get(agent_id, []))})  # fmt: skip
    sessions = channel.webchat.sessions.values()
    return {"queues": list(queues.values()), "agents": agents,
            "sessions": {"open": sum(1 for s in sessions if s.state != "ended"),
                         "connected": sum(1 for s in sessions if s.socket is not None)}}  # fmt: skip


def router(channel: ChatChannel) -> APIRouter:
    r = APIRouter(tags=["supervisor"])

    @r.get("/api/web/supervisor")
    async def figures(p: Annotated[Principal, Depends(principal)]) -> dict[str, Any]:
        if p.role != "supervisor":
            raise HTTPException(403, "supervisor role required")
        return web_figures(channel)

    return r
