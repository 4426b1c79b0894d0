"""Loops a flow can never leave, found when the flows are loaded.

Two kinds stop a call dead at run time (the stepper's guards end it after
``MAX_STEPS`` steps or ``MAX_DEPTH`` nested sub-flows), so they are refused up front:

- a ``goto`` cycle: steps that jump round in a circle with no step in it that waits
  for the caller (menu, gather), ends the flow, or can branch out of the circle;
- a flow that calls itself, directly or through other flows.

A menu that leads back to itself is fine: each round waits for the caller's choice.
"""

from __future__ import annotations

from collections.abc import Iterable

from callcenter.ivr.flow_model import (
    CallbackStep,
    CallStep,
    Flow,
    GatherStep,
    HangupStep,
    MenuStep,
    QueueStep,
    ReturnStep,
    TransferStep,
    VoicemailStep,
)
from callcenter.ivr.flows import FlowIssue, successors

# steps after which the flow may not come back: the flow ends, or a sub-flow may end the call
_MAY_END = (QueueStep, VoicemailStep, CallbackStep, TransferStep, HangupStep, ReturnStep, CallStep)
_WAITS = (MenuStep, GatherStep)


def _cycles(graph: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components that hold a cycle (Tarjan), members in discovery order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph.get(v, []):
                found.append(component[::-1])

    for v in graph:
        if v not in index:
            visit(v)
    return found


def goto_traps(flow: Flow) -> list[FlowIssue]:
    graph = {sid: [s for s in successors(flow, sid) if s in flow.steps] for sid in flow.steps}
    issues = []
    for component in _cycles(graph):
        members = set(component)
        way_out = any(
            isinstance(flow.steps[s], _MAY_END + _WAITS) or not graph[s] or set(graph[s]) - members
            for s in component
        )
        if not way_out:
            first = min(component, key=flow.order.index)
            circle = " → ".join([*sorted(component, key=flow.order.index), first])
            why = f"steps.{first}: endless goto loop ({circle}): no step waits for the caller or leads out"
            issues.append(FlowIssue(flow.file, flow.lines[first], why))
    return issues


def call_cycles(flows: Iterable[Flow]) -> list[FlowIssue]:
    by_name = {f.name: f for f in flows}
    graph = {
        f.name: sorted({s.call for s in f.steps.values() if isinstance(s, CallStep) and s.call in by_name})
        for f in by_name.values()
    }
    issues = []
    for component in _cycles(graph):
        flow = by_name[component[0]]
        sid = next(s for s, st in flow.steps.items() if isinstance(st, CallStep) and st.call in component)
        circle = " → ".join([*component, component[0]])
        issues.append(FlowIssue(flow.file, flow.lines[sid], f"steps.{sid}: flow {flow.name!r} calls itself "
                                f"({circle}); sub-flows may not recurse"))  # fmt: skip
    return issues
