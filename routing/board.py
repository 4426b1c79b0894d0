"""The waiting board: every waiting task, grouped so an agent-free decision is cheap.

Tasks with the same queue, channel, requirements, allowed groups and
exclusive (preferred) agent form a *group*; an agent is eligible for a whole
group or for none of it, so an agent-free decision checks one head per group
instead of every task. Each group is a heap ordered by the queue's
time-invariant sort key:

- with aging rate r > 0 (priority points per second) the effective priority
  ``p + r·(now − created)`` equals ``r·(now − (created − p/r))``, so ordering by
  the "virtual arrival time" ``created − p/r`` is the same at every instant;
- without aging: priority first, then age.

Either way equal priorities are served first come, first served, and a task
that comes back (reject, RONA) gets its original place because the key is
computed from its priority and creation time only. Groups are indexed by one
"anchor" required skill; an agent can only be eligible for groups anchored on
a skill they have (or on no skill).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass, field

from routing.matching import meets
from routing.model import Agent, Phase, Task

GroupKey = tuple[str, str, tuple[tuple[str, int], ...], frozenset[str], str | None]


@dataclass(slots=True, eq=False)
class Group:
    key: GroupKey
    queue: str
    channel: str
    required: dict[str, int]
    allowed: frozenset[str]
    only_agent: str | None
    anchor: str
    rate: float  # aging, priority points per second
    weight: float
    heap: list[tuple[float, float, int, int, Task]] = field(default_factory=list)
    live: int = 0

    def sort_key(self, task: Task) -> tuple[float, float]:
        if self.rate > 0:
            return (task.created - task.priority / self.rate, 0.0)
        return (-float(task.priority), task.created)

    def effective_priority(self, task: Task, now: float) -> float:
        return task.priority + self.rate * max(0.0, now - task.created) + self.weight

    def _valid(self, entry: tuple[float, float, int, int, Task]) -> bool:
        task = entry[4]
        return task.group is self and task.version == entry[3] and task.phase is Phase.WAITING

    def head(self, agent_id: str | None = None) -> Task | None:
        heap = self.heap
        while heap and not self._valid(heap[0]):
            heapq.heappop(heap)
        if not heap:
            return None
        top = heap[0][4]
        if agent_id is None or agent_id not in top.rejected_by:
            return top
        # Rare: the head was rejected by this agent; look further down in order.
        for entry in sorted(heap):
            if self._valid(entry) and agent_id not in entry[4].rejected_by:
                return entry[4]
        return None

    def tasks(self) -> Iterator[Task]:
        for entry in self.heap:
            if self._valid(entry):
                yield entry[4]


class Board:
    def __init__(self) -> None:
        self._groups: dict[GroupKey, Group] = {}
        self._by_anchor: dict[tuple[str, str], set[Group]] = {}  # (channel, skill) -> groups
        self._by_queue: dict[str, set[Group]] = {}
        self.waiting: dict[str, int] = {}  # queue -> number of waiting tasks

    def add(self, task: Task, rate: float, weight: float) -> None:
        only = task.preferred_agent if task.preferred_only_until is not None else None
        req = tuple(sorted(task.required.items()))
        key: GroupKey = (task.queue, task.channel, req, task.allowed_groups, only)
        group = self._groups.get(key)
        if group is None:
            anchor = min(task.required) if task.required else ""
            group = Group(
                key,
                task.queue,
                task.channel,
                dict(task.required),
                task.allowed_groups,
                only,
                anchor,
                rate,
                weight,
            )
            self._groups[key] = group
            self._by_anchor.setdefault((task.channel, anchor), set()).add(group)
            self._by_queue.setdefault(task.queue, set()).add(group)
        task.version += 1
        task.group = group
        task.phase = Phase.WAITING
        k1, k2 = group.sort_key(task)
        heapq.heappush(group.heap, (k1, k2, task.seq, task.version, task))
        group.live += 1
        self.waiting[task.queue] = self.waiting.get(task.queue, 0) + 1

    def remove(self, task: Task) -> None:
        group = task.group
        if group is None:
            return
        task.group = None
        task.version += 1
        group.live -= 1
        self.waiting[group.queue] -= 1
        if group.live == 0:
            del self._groups[group.key]
            self._by_anchor[(group.channel, group.anchor)].discard(group)
            self._by_queue[group.queue].discard(group)

    def best_for(self, agent: Agent, channel: str, now: float) -> tuple[Task, Group, float, int] | None:
        """Best waiting task for the agent on one channel: highest effective priority
        (aging and queue weight included), then oldest, then first arrived.
        Returns (task, group, effective priority, eligible groups considered)."""
        best: tuple[tuple[float, float, int], Task, Group, float] | None = None
        considered = 0
        for skill in (*agent.skills, ""):
            groups = self._by_anchor.get((channel, skill))
            if not groups:
                continue
            for group in groups:
                if group.only_agent is not None and group.only_agent != agent.id:
                    continue
                if not meets(agent, group.required, group.allowed):
                    continue
                task = group.head(agent.id)
                if task is None:
                    continue
                considered += 1
                eff = group.effective_priority(task, now)
                key = (-eff, task.created, task.seq)
                if best is None or key < best[0]:
                    best = (key, task, group, eff)
        if best is None:
            return None
        return best[1], best[2], best[3], considered

    def queue_tasks(self, queue: str) -> Iterator[Task]:
        for group in self._by_queue.get(queue, ()):
            yield from group.tasks()

    def position(self, task: Task, now: float) -> int:
        """1-based place of a waiting task in its queue by effective priority, then age."""
        group = task.group
        if group is None:
            return 0
        mine = (-group.effective_priority(task, now), task.created, task.seq)
        ahead = 0
        for g in self._by_queue.get(task.queue, ()):
            for other in g.tasks():
                if (-g.effective_priority(other, now), other.created, other.seq) < mine:
                    ahead += 1
        return ahead + 1
