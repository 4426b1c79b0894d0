"""Builds the web channel from webchat.yaml and adds it to a ``Center`` (callcenter/center.py).

Kept here so the composition root needs three lines: build, start, close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from callcenter.channels.chat import ChatChannel, WebFormChannel
from callcenter.ivr.crm_lookups import CrmLookups
from callcenter.web.channel_api import include_channel
from callcenter.web.pages import PAGES_DIR
from callcenter.webchat import agent_api, customer_ws, forms, pages, supervisor_api
from callcenter.webchat.selfservice import SelfService
from callcenter.webchat.service import WebChat

if TYPE_CHECKING:
    from callcenter.center import Center


def install_webchat(center: Center) -> WebChat | None:
    """The chat and web form channels, their pages and endpoints; None without webchat.yaml."""
    cfg = center.cfg.webchat
    if cfg is None or not cfg.enabled:
        return None
    router = center.router

    def agent_name(agent_id: str) -> str:
        agent = router.agents.get(agent_id)
        return agent.name if agent is not None and agent.name else agent_id

    webchat = WebChat(cfg, center.cfg.services, SelfService(cfg.faq, CrmLookups(center.crm)),
                      default_region=center.cfg.server.database.default_region,
                      agent_name=agent_name,
                      # the email channel (callcenter/email/) is built after us; read it when mailing
                      mailer=lambda: getattr(getattr(center, "email", None), "outbound", None))  # fmt: skip
    chat = ChatChannel(center.core, webchat, center.hub)
    webchat.webform = WebFormChannel(center.core, cfg.service)
    app = center.app
    app.include_router(pages.router())
    app.include_router(customer_ws.router(webchat))
    app.include_router(forms.router(webchat))
    app.include_router(supervisor_api.router(chat))
    # One desk script for both: desk_chat.js registers the "chat" and "webform" panels.
    include_channel(app, "chat", router=agent_api.router(chat), script=PAGES_DIR / "desk_chat.js")
    return webchat
