"""Start-up after a crash (``kill -9``, power loss): what the previous run left behind.

Run by ``Center.start`` once the CRM store and the voice channel are up and before SIP
listens, so no new call can mix with what is being cleaned up:

1. callback requests the previous run kept (contacts/callback_keeper.py) go back in
   their queues with their original creation time;
2. every other interaction record still ``open`` is closed as ``interrupted``
   (crm_bridge/recovery.py: reason ``server_restart``, ended at its last event, pushed
   to the CRM like any change);
3. reservations need nothing: the in-memory router starts empty, so no agent is held by
   an offer of the previous run (agents sign in again from their desk).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection

from callcenter.contacts.callback_keeper import CallbackKeeper
from callcenter.contacts.contact import Contact
from crm_bridge.store import CrmStore

log = logging.getLogger(__name__)


async def recover(crm: CrmStore, keeper: CallbackKeeper, register: Callable[[Contact], None],
                  keep: Collection[str] = (), *, sweep: bool = True,
                  take: Callable[[str], Awaitable[bool]] | None = None) -> None:  # fmt: skip
    """``keep``: contacts another channel carried over (email contacts back in their queues).
    ``sweep=False`` in a cluster: other nodes' records are open because their calls are up;
    a dead node's are closed by a survivor instead (callcenter/cluster/leases.py). ``take``:
    which kept callback requests are this node's to restore (a cluster's claim)."""
    restored = await keeper.restore(register, take)
    closed = await crm.close_interrupted(keep=set(restored) | set(keep)) if sweep else 0
    log.info("recovery: %d interaction(s) left open by the previous run closed as interrupted, "
             "%d callback request(s) back in their queues; routing starts empty (no reservations "
             "carried over)", closed, len(restored),
             extra={"interrupted": closed, "callbacks_restored": len(restored)})  # fmt: skip
