"""CRM bridge: unified interaction records, customer identity and push without loss.

A library with no telephony or web imports. ``callcenter`` feeds it plain event
dicts (``Event.as_dict()`` shape) and asks it questions; changes that must leave
the building are written to an outbox in the same transaction and delivered by
:class:`crm_bridge.outbox.OutboxDispatcher`.

Names are imported lazily so ``import crm_bridge.addresses`` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ApplyResult", "CrmStore", "OutboxDispatcher", "WebhookSink"]


def __getattr__(name: str) -> Any:
    if name in ("CrmStore", "ApplyResult"):
        from crm_bridge import store

        return getattr(store, name)
    if name in ("OutboxDispatcher", "WebhookSink"):
        from crm_bridge import outbox

        return getattr(outbox, name)
    raise AttributeError(name)
