"""``callcenter check-config``'s view of the IVR: flows and the services that use them."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.ivr.flow_model import GatherStep, MenuStep
from callcenter.ivr.flows import FlowSet, collect_flows
from callcenter.ivr.runner import BUILTIN_APPS
from callcenter.ivr.services import ServicesConfig

if TYPE_CHECKING:  # types only: importing the speech package loads pocketsphinx
    from callcenter.speech.interfaces import SpeechRecognizer


def check_flows(
    directory: Path | str,
    services: ServicesConfig | None,
    known_queues: Iterable[str] | None,
    *,
    include_warnings: bool = False,
) -> list[str]:
    """Every problem as ``file:line: reason``; empty when the flows are usable.

    Checks each flow file against the schema and the cross-references (jump
    targets, sub-flows, queue names), and that every flow a service names is
    present. Unreachable-step warnings are returned only on request: they do
    not stop a server from starting.
    """
    queues = list(known_queues) if known_queues is not None else None
    fs, issues = collect_flows(directory, queues)
    problems = [str(i) for i in issues]
    if services is not None:
        problems.extend(f"services: {why}" for _key, why in service_problems(services, fs, queues))
    if include_warnings:
        problems.extend(str(w) for w in fs.warnings)
    return problems


def service_problems(
    services: ServicesConfig, flows: FlowSet, queues: list[str] | None
) -> list[tuple[str, str]]:
    """(key, reason) for each service naming a flow or a default queue that does not exist."""
    problems = []
    for svc in services.services.values():
        for key, flow in (("flow", svc.flow), ("after_hours.flow", svc.after_hours.flow)):
            if flow is not None and flow not in flows.flows and flow not in BUILTIN_APPS:
                problems.append((f"services.{svc.name}.{key}", f"service {svc.name!r} uses flow {flow!r}, "
                                 f"which is not in {flows.directory}"))  # fmt: skip
        if queues is not None and svc.default_queue not in queues:
            problems.append((f"services.{svc.name}.default_queue", f"service {svc.name!r} has unknown "
                             f"default_queue {svc.default_queue!r}"))  # fmt: skip
    return problems


def check_phrases(flows: FlowSet, recognizer: SpeechRecognizer) -> list[str]:
    """Menu/gather phrases with words the speech recogniser cannot hear, as
    ``file:line: reason`` warnings (a phrase like that can only be keyed, never said)."""
    problems = []
    for flow in flows:
        for sid, step in flow.steps.items():
            phrases: list[str] = []
            if isinstance(step, MenuStep):
                phrases = [p for o in step.menu.options for p in o.phrases]
            elif isinstance(step, GatherStep) and step.gather.phrases:
                phrases = list(step.gather.phrases)
            unknown = recognizer.unknown_words(phrases) if phrases else []
            if unknown:
                problems.append(f"{flow.file}:{flow.lines[sid]}: warning: steps.{sid}: the "
                                f"recogniser does not know {', '.join(unknown)}")  # fmt: skip
    return problems
