"""Escalation, overflow and their decisions: pure rules shared by every store.

The in-memory :class:`routing.Router` and :class:`routing.redis_store.RedisRouter`
both apply a queue's escalation steps, maximum wait and maximum size through
these functions, so a task escalates, overflows and is explained the same way
whichever store holds it. Nothing here reads a clock or touches a store.
"""

from __future__ import annotations

from collections.abc import Mapping

from routing.config import EscalationStep, Queue
from routing.model import Decision, DecisionKind, Explanation, Task


def merge_min(base: Mapping[str, int], extra: Mapping[str, int]) -> dict[str, int]:
    """Union of requirements; where both name a skill, the stricter level wins."""
    out = dict(base)
    if not extra:
        return out
    for skill, level in extra.items():
        out[skill] = max(level, out.get(skill, 0))
    return out


def apply_step(task: Task, step: EscalationStep, index: int) -> str:
    """Apply one escalation step to the task's requirements and priority; the note
    (also the ESCALATED decision's text) says what changed. ``move_to`` is only named
    here: the store moves the task, because that depends on where it is."""
    done = []
    for skill, level in step.relax.items():
        cur = task.required.get(skill)
        if cur is not None and level < cur:
            task.required[skill] = level
            done.append(f"relaxed {skill} {cur}→{level}")
    for skill in step.drop_required:
        if task.required.pop(skill, None) is not None:
            done.append(f"dropped required {skill}")
    for skill in step.drop_preferred:
        if task.preferred.pop(skill, None) is not None:
            done.append(f"dropped preferred {skill}")
    if step.widen_groups and task.allowed_groups:
        task.allowed_groups = task.allowed_groups | frozenset(step.widen_groups)
        done.append(f"widened to groups {sorted(task.allowed_groups)}")
    if step.raise_priority:
        task.priority += step.raise_priority
        done.append(f"priority +{step.raise_priority} → {task.priority}")
    if step.move_to:
        done.append(f"move to {step.move_to}")
    what = ", ".join(done) or "nothing left to change"
    note = f"escalation step {index + 1} (after {step.after_s:g}s in {task.queue}): {what}"
    task.steps_done = index + 1
    task.rejected_by.clear()
    task.step_notes.append(note)
    return note


def escalated(task: Task, step: EscalationStep, index: int, note: str) -> Decision:
    return Decision(
        DecisionKind.ESCALATED,
        task.id,
        task.queue,
        Explanation(
            note,
            {
                "step": index,
                "after_s": step.after_s,
                "required": dict(task.required),
                "priority": task.priority,
            },
        ),
    )


PREFERRED_WINDOW_OVER = "preferred agent window over: any eligible agent"


def overflow_chain(queues: Mapping[str, Queue], start: str, hops: int) -> list[tuple[str, int]]:
    """Queues a task entering ``start`` may end up in when queues are full, in order,
    each with the task's overflow hop count there. Hops are bounded by the number of
    queues, so a cycle of overflow targets ends in a refusal instead of looping."""
    chain = [(start, hops)]
    cur = start
    while queues[cur].overflow is not None and hops < len(queues):
        hops += 1
        cur = queues[cur].overflow or ""
        chain.append((cur, hops))
    return chain


def full_reason(queue: str, q: Queue) -> str:
    return f"{queue} is full ({q.max_size} waiting)"


def max_wait_reason(task: Task, q: Queue, now: float) -> str:
    return f"waited {now - task.queued_at:.0f}s, max wait of {task.queue} is {q.max_wait_s:g}s"


def overflowed(task_id: str, source: str, target: str, reason: str) -> Decision:
    return Decision(
        DecisionKind.OVERFLOW,
        task_id,
        source,
        Explanation(f"{reason}: moved to {target}", {"from": source, "to": target, "reason": reason}),
        target_queue=target,
    )


def refused(task_id: str, queue: str, q: Queue) -> Decision:
    return Decision(
        DecisionKind.REFUSED,
        task_id,
        queue,
        Explanation(
            f"{full_reason(queue, q)} and has no overflow target: contact refused",
            {"queue": queue, "max_size": q.max_size},
        ),
    )


def exited(task_id: str, queue: str, q: Queue, reason: str) -> Decision:
    return Decision(
        DecisionKind.EXITED,
        task_id,
        queue,
        Explanation(f"{reason} and no overflow target: leaves the queue", {"max_wait_s": q.max_wait_s}),
    )


def req_text(channel: str, required: Mapping[str, int]) -> str:
    req = ", ".join(f"{s}≥{lvl}" for s, lvl in sorted(required.items()))
    return f"{channel} [{req or 'any skill'}]"


def in_context(text: str, why: str, notes: list[str]) -> str:
    """A decision's text with what led to it: the cause first (overflow, transfer,
    back after RONA...), the escalation steps applied so far last."""
    if why:
        text = f"{why}; {text}"
    if notes:
        text += "; " + "; ".join(notes)
    return text


def waiting_text(task: Task, now: float, why: str) -> str:
    """The QUEUED decision's text: what the task waits for, and where."""
    text = f"no eligible agent free for {req_text(task.channel, task.required)}; waiting in {task.queue}"
    if task.preferred_only_until is not None:
        text += (
            f"; held for preferred agent {task.preferred_agent} for {task.preferred_only_until - now:.0f}s"
        )
    return in_context(text, why, task.step_notes)
