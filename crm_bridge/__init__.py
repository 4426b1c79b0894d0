"""CRM bridge: unified interaction records, customer identity and push without loss.

A library with no telephony or web imports. ``callcenter`` feeds it plain event
dicts (``Event.as_dict()`` shape) and asks it questions; changes that must leave
the building are written to an outbox in the same transaction and delivered by
:class:`crm_bridge.outbox.OutboxDispatcher`.
"""

from crm_bridge.outbox import OutboxDispatcher, WebhookSink
from crm_bridge.store import ApplyResult, CrmStore

__all__ = ["ApplyResult", "CrmStore", "OutboxDispatcher", "WebhookSink"]
