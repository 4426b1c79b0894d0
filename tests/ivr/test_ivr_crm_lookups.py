"""The IVR's CRM adapter against crm_bridge's real store (SQLite file, migrated)."""

from __future__ import annotations

from pathlib import Path

from callcenter.ivr.crm_lookups import CrmLookups
from crm_bridge.demo import seed_demo
from crm_bridge.store import CrmStore


async def test_lookups_against_demo_crm(tmp_path: Path) -> None:
    store = CrmStore(f"sqlite+aiosqlite:///{tmp_path / 'crm.db'}", tmp_path / "files")
    await store.start()
    try:
        await seed_demo(store)
        waits = {"support": 90.0}
        lookups = CrmLookups(store, queue_wait=waits.get)
        grace = await lookups.customer_by_ani("+441632960001")
        assert grace is not None
        assert (grace.name, grace.tier, grace.language) == ("Grace Hopper", "vip", "en")
        assert grace.account == "100001"
        assert await lookups.customer_by_ani("+441632969999") is None
        assert await lookups.customer_by_ani("") is None
        order = await lookups.order_status("ORD-1001", None)
        assert order is not None and (order.order_id, order.status) == ("ORD-1001", "shipped")
        assert await lookups.order_status("ORD-9999", None) is None
        assert await lookups.queue_estimated_wait("support") == 90.0
        assert await lookups.queue_estimated_wait("sales") is None
    finally:
        await store.close()
