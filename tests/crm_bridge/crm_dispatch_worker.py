"""A dispatcher in its own process, for the kill-mid-delivery test.

Usage: python crm_dispatch_worker.py DB_URL SINK_URL SECRET
Prints "ready" once started; runs until killed.
"""

from __future__ import annotations

import asyncio
import sys

from crm_bridge.outbox import OutboxDispatcher, WebhookSink


async def main(url: str, sink_url: str, secret: str) -> None:
    sink = WebhookSink("erp", sink_url, secret, max_attempts=50, backoff=0.05, backoff_max=0.5)
    dispatcher = OutboxDispatcher(url, [sink], batch_size=5, concurrency=5, poll_interval=0.05, lease_s=1.0)
    print("ready", flush=True)
    await dispatcher.run()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
