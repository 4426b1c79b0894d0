"""EventBatcher: single events in, batched transactions out, nothing lost."""

from __future__ import annotations

import pytest
from crm_events import abandoned_call, answered_call

from crm_bridge.batching import EventBatcher
from crm_bridge.store import CrmStore


@pytest.mark.parametrize("writers", [1, 3])
async def test_batcher_commits_everything_in_few_transactions(store: CrmStore, writers: int) -> None:
    events = [e for i in range(40) for e in (answered_call if i % 2 else abandoned_call)(f"k{i}", t0=i)]
    batcher = EventBatcher(store, max_batch=200, max_delay=0.05, writers=writers)
    batcher.start()
    calls = 0
    original = store.apply_events

    async def counting(evts):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        return await original(evts)

    store.apply_events = counting  # type: ignore[method-assign]
    for e in events:
        batcher.put(e)
    await batcher.close()
    assert batcher.applied == len(events) and batcher.backlog == 0
    assert calls <= len(events) // 200 + 2 * writers  # batched, not one transaction per event
    for i in range(40):
        rec = await store.interaction(f"k{i}")
        assert rec is not None and rec["status"] == "ended"
