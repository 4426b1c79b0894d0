"""/metrics carries the process figures a soak run watches: asyncio tasks, RSS, open fds."""

from __future__ import annotations

import asyncio

from callcenter.web.metrics import make_registry


def _value(text: str, name: str) -> float:
    line = next(ln for ln in text.splitlines() if ln.startswith(name + " "))
    return float(line.split()[1])


async def test_metrics_count_tasks_and_process_resources() -> None:
    scrape = make_registry(lambda: {})
    before = _value(scrape().decode(), "callcenter_asyncio_tasks")
    gate = asyncio.Event()
    extra = [asyncio.create_task(gate.wait()) for _ in range(5)]
    text = scrape().decode()
    assert _value(text, "callcenter_asyncio_tasks") == before + 5
    assert _value(text, "process_resident_memory_bytes") > 0
    assert _value(text, "process_open_fds") > 0
    gate.set()
    await asyncio.gather(*extra)
