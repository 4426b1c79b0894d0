"""``Lookups`` over crm_bridge's CrmStore (customer by ANI / account, order status).

crm_bridge returns plain dicts and never imports callcenter; this adapter turns
them into the IVR's small types. The queue estimate comes from routing through
an injected callable, because the IVR must not depend on how routing is run.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from callcenter.ivr.ports import CustomerInfo, OrderInfo

WaitEstimate = Callable[[str], float | Awaitable[float | None] | None]


class CustomerStore(Protocol):
    """What the IVR reads of the CRM (crm_bridge's ``CrmStore``): rows as plain dicts."""

    async def customer_by_address(self, kind: str, value: str) -> dict[str, Any] | None: ...

    async def customer_by_account(self, account: str) -> dict[str, Any] | None: ...

    async def order_status(self, order_number: str) -> dict[str, Any] | None: ...


def customer_from_crm(row: dict[str, Any]) -> CustomerInfo:
    attributes = row.get("attributes") or {}
    account = row.get("account") or attributes.get("account")
    return CustomerInfo(
        id=str(row["id"]),
        name=str(row.get("name") or ""),
        tier=str(row.get("tier") or "").lower(),
        language=row.get("language") or None,
        account=str(account) if account else None,
    )


class CrmLookups:
    def __init__(self, store: CustomerStore, queue_wait: WaitEstimate | None = None) -> None:
        self.store = store
        self._queue_wait = queue_wait

    async def customer_by_ani(self, ani: str) -> CustomerInfo | None:
        if not ani:
            return None  # withheld/anonymous caller
        row = await self.store.customer_by_address("phone", ani)
        return customer_from_crm(row) if row else None

    async def customer_by_account(self, account: str) -> CustomerInfo | None:
        row = await self.store.customer_by_account(account)
        return customer_from_crm(row) if row else None

    async def order_status(self, order_id: str, customer_id: str | None) -> OrderInfo | None:
        row = await self.store.order_status(order_id)
        if not row:
            return None
        return OrderInfo(
            order_id=str(row.get("number") or order_id),
            status=str(row.get("status") or ""),
            detail=str(row.get("subject") or ""),
            customer_id=row.get("customer_id"),
        )

    async def queue_estimated_wait(self, queue: str) -> float | None:
        if self._queue_wait is None:
            return None
        value = self._queue_wait(queue)
        if inspect.isawaitable(value):
            value = await value
        return None if value is None else float(value)
