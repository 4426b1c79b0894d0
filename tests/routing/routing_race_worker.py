"""A separate OS process driving a RedisRouter, for the multi-process Redis tests.

Modes:
  race  PREFIX INDEX TASKS OUT   submit TASKS tasks and handle every offer this process
                                 gets until all tasks of both processes are done; write
                                 what it accepted to OUT (JSON)
  crash PREFIX                   take one reservation, print its id, then block until
                                 killed (the test kills it with SIGKILL)
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

from redis.asyncio import Redis

from routing import DecisionKind, ManualClock, build_config
from routing.redis_store import RedisRouter

SKILLS = {"skills": {"billing": {}, "technical": {}}}
QUEUES = {
    "queues": {
        "billing": {"required_skills": {"billing": 3}, "reservation_timeout_s": 120},
        "support": {
            "required_skills": {"technical": 3},
            "reservation_timeout_s": 120,
            "weight": 1,
            "aging": {"priority_per_minute": 2},
        },
    }
}
AGENTS = 24
TOTAL_KEY = "total"


def race_config():
    agents = [
        {
            "id": f"ag{i:02d}",
            "skills": {"billing": 5 + i % 6, "technical": 4 + i % 7},
            "capacity": {"voice": 1, "web": 2},
        }
        for i in range(AGENTS)
    ]
    return build_config(SKILLS, QUEUES, agents)


async def race(prefix: str, index: int, n_tasks: int, out: str) -> None:
    redis = Redis.from_url(os.environ.get("ROUTING_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    router = RedisRouter(race_config(), redis, prefix=prefix, owner=f"p{index}", audit=True)
    key = router._key
    await router.start()
    for i in range(AGENTS):
        await router.set_softphone(f"ag{i:02d}", True)
        await router.set_agent_state(f"ag{i:02d}", "available")
    # Barrier: both processes start racing together.
    other = 1 - index
    await redis.rpush(key("go", str(other)), "1")
    if not await redis.blpop([key("go", str(index))], timeout=60):
        raise SystemExit("the other process never arrived")

    rng = random.Random(index)
    held: dict[str, str] = {}  # task -> agent, accepted here
    accepted: list[list[str]] = []
    rejected_once: set[str] = set()

    async def handle(decisions: list) -> None:
        queue = list(decisions)
        while queue:
            d = queue.pop(0)
            if d.kind is not DecisionKind.OFFER:
                continue
            res = d.reservation
            if d.task_id not in rejected_once and rng.random() < 0.1:
                rejected_once.add(d.task_id)
                queue += await router.reject(res.id)
                continue
            await router.accept(res.id)
            held[d.task_id] = d.agent_id
            accepted.append([d.task_id, d.agent_id, res.id])

    submitted = 0
    deadline = time.monotonic() + 240
    total = 2 * n_tasks
    while time.monotonic() < deadline:
        if submitted < n_tasks and rng.random() < 0.6:
            queue = rng.choice(["billing", "support"])
            await handle(
                await router.submit(
                    f"p{index}-{submitted}",
                    queue,
                    rng.choice(["voice", "web", "web"]),
                    required={"billing" if queue == "billing" else "technical": rng.randint(1, 5)},
                    priority=rng.randint(0, 2),
                )
            )
            submitted += 1
        elif held:
            task = rng.choice(sorted(held))
            del held[task]
            await handle(await router.complete(task))
            if await redis.incr(key("done")) == total:
                await redis.rpush(key("finished"), "1", "1")  # wake both processes
        elif submitted >= n_tasks:
            # Nothing held here: the other process's completions place the remaining
            # work (agent-first decisions). Wait for the last completion; a lost task
            # would leave this wait to time out.
            await redis.blpop([key("finished")], timeout=max(1, int(deadline - time.monotonic())))
            break
    Path(out).write_text(json.dumps({"accepted": accepted, "submitted": submitted}))
    await redis.aclose()


async def crash(prefix: str) -> None:
    redis = Redis.from_url(os.environ.get("ROUTING_TEST_REDIS", "redis://127.0.0.1:6379/0"))
    router = RedisRouter(
        race_config(), redis, prefix=prefix, owner="doomed", clock=ManualClock(1000.0), lease_grace_s=5.0
    )
    await router.start()
    await router.set_softphone("ag00", True)
    await router.set_agent_state("ag00", "available")
    (offer,) = await router.submit("c1", "billing", "voice")
    print(offer.reservation.id, offer.agent_id, flush=True)
    sys.stdin.read()  # block until killed


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "race":
        asyncio.run(race(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]))
    else:
        asyncio.run(crash(sys.argv[2]))
