"""Loading flows from ``ivr_flows/*.yaml`` with errors that name file and line.

Every file is validated step by step against :mod:`flow_model`; then the
set is cross-checked: jump targets exist, called sub-flows exist, queue
names are known (when a list is given), and steps nobody can reach are
reported as warnings. A bad file is refused as a whole — a half-loaded flow
would strand callers at run time.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from callcenter.ivr.flow_model import (
    STEP_MODELS,
    CallStep,
    Flow,
    FlowHeader,
    GatherStep,
    HangupStep,
    MenuStep,
    QueueStep,
    SayStep,
    StepBase,
    VoicemailStep,
)
from callcenter.ivr.templates import has_placeholders
from callcenter.ivr.yamllines import LinedDoc, YamlSyntaxError, load_with_lines


@dataclass(frozen=True, slots=True)
class FlowIssue:
    file: str
    line: int
    reason: str
    warning: bool = False

    def __str__(self) -> str:
        tag = "warning: " if self.warning else ""
        return f"{self.file}:{self.line}: {tag}{self.reason}"


class FlowLoadError(ValueError):
    def __init__(self, issues: list[FlowIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


def _loc_text(loc: Iterable[Any]) -> str:
    return ".".join(str(p) for p in loc)


def parse_flow(doc: LinedDoc, file: str, default_name: str) -> tuple[Flow | None, list[FlowIssue]]:
    """Validate one parsed document; returns the flow or the issues found."""
    issues: list[FlowIssue] = []
    data = doc.data
    if not isinstance(data, dict):
        return None, [FlowIssue(file, 1, "a flow file must be a mapping with 'steps'")]
    data = {"name": default_name, **data}
    try:
        header = FlowHeader.model_validate(data)
    except ValidationError as exc:
        for err in exc.errors():
            loc = tuple(err["loc"])
            issues.append(FlowIssue(file, doc.line_for(loc), f"{_loc_text(loc)}: {err['msg']}"))
        return None, issues
    steps: dict[str, StepBase] = {}
    lines: dict[str, int] = {}
    for raw_id, body in header.steps.items():
        sid = str(raw_id)
        line = doc.line_for(("steps", raw_id))
        lines[sid] = line
        if not isinstance(body, dict):
            issues.append(FlowIssue(file, line, f"steps.{sid}: a step must be a mapping"))
            continue
        kinds = [k for k in STEP_MODELS if k in body]
        if len(kinds) != 1:
            what = "no action" if not kinds else f"several actions ({', '.join(kinds)})"
            issues.append(
                FlowIssue(
                    file, line, f"steps.{sid}: step has {what}; use exactly one of {', '.join(STEP_MODELS)}"
                )
            )
            continue
        try:
            steps[sid] = STEP_MODELS[kinds[0]].model_validate(body)
        except ValidationError as exc:
            for err in exc.errors():
                loc = ("steps", raw_id, *err["loc"])
                msg = err["msg"].removeprefix("Value error, ")
                issues.append(FlowIssue(file, doc.line_for(loc), f"{_loc_text(loc)}: {msg}"))
    if issues:
        return None, issues
    order = tuple(steps)
    start = header.start or order[0]
    if start not in steps:
        return None, [FlowIssue(file, doc.line_for(("start",)), f"start step {start!r} does not exist")]
    flow = Flow(
        name=header.name,
        file=file,
        description=header.description,
        start=start,
        steps=steps,
        order=order,
        lines=lines,
    )
    return flow, _check_targets(flow)


def _check_targets(flow: Flow) -> list[FlowIssue]:
    issues = []
    for sid, step in flow.steps.items():
        for target in step.targets():
            if target not in flow.steps:
                issues.append(
                    FlowIssue(
                        flow.file,
                        flow.lines[sid],
                        f"steps.{sid}: goto target {target!r} does not exist in flow {flow.name!r}",
                    )
                )
    return issues


def successors(flow: Flow, sid: str) -> list[str]:
    step = flow.steps[sid]
    out = list(step.targets())
    if step.falls_through() and not step.next:
        following = flow.following(sid)
        if following:
            out.append(following)
    return out


def unreachable_steps(flow: Flow) -> list[str]:
    seen = {flow.start}
    todo = deque([flow.start])
    while todo:
        for nxt in successors(flow, todo.popleft()):
            if nxt in flow.steps and nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return [s for s in flow.order if s not in seen]


@dataclass
class FlowSet:
    """All flows of a directory, by name, plus load-time warnings."""

    flows: dict[str, Flow] = field(default_factory=dict)
    warnings: list[FlowIssue] = field(default_factory=list)
    directory: Path | None = None

    def __getitem__(self, name: str) -> Flow:
        return self.flows[name]

    def __contains__(self, name: object) -> bool:
        return name in self.flows

    def __iter__(self) -> Iterator[Flow]:
        return iter(self.flows.values())

    def step_title(self, label: str, entry_flow: str) -> str:
        """A path label (``step`` of the entry flow, ``flow.step`` of a sub-flow) as the
        step's ``title``; the label itself when the step has none."""
        flow_name, _, step_id = label.rpartition(".")
        flow = self.flows.get(flow_name or entry_flow)
        step = flow.steps.get(step_id) if flow is not None else None
        return getattr(step, "title", None) or label

    def static_prompts(self) -> dict[str, set[str]]:
        """Prompt texts without placeholders, by language ('' = any): render these at load."""
        out: dict[str, set[str]] = {}

        def add(text: Any) -> None:
            if isinstance(text, str):
                if not has_placeholders(text):
                    out.setdefault("", set()).add(text)
            elif isinstance(text, dict):
                for lang, t in text.items():
                    if not has_placeholders(t):
                        out.setdefault(lang, set()).add(t)

        for flow in self:
            for step in flow.steps.values():
                if isinstance(step, SayStep):
                    add(step.say)
                elif isinstance(step, MenuStep):
                    for t in (step.menu.prompt, step.menu.no_input, step.menu.no_match):
                        add(t)
                elif isinstance(step, GatherStep):
                    for t in (step.gather.prompt, step.gather.no_input, step.gather.invalid):
                        add(t)
                elif isinstance(step, VoicemailStep):
                    add(step.voicemail.prompt)
                    add(step.voicemail.goodbye)
                elif isinstance(step, HangupStep) and not isinstance(step.hangup, bool):
                    add(step.hangup)
        return out


def load_flow_file(path: Path) -> tuple[Flow | None, list[FlowIssue]]:
    try:
        doc = load_with_lines(path)
    except YamlSyntaxError as exc:
        return None, [FlowIssue(exc.file, exc.line, exc.reason)]
    return parse_flow(doc, str(path), path.stem)


def collect_flows(
    directory: Path | str, known_queues: Iterable[str] | None = None
) -> tuple[FlowSet, list[FlowIssue]]:
    """Load every ``*.yaml``/``*.yml`` in ``directory``; returns flows and all issues."""
    d = Path(directory)
    fs = FlowSet(directory=d)
    issues: list[FlowIssue] = []
    if not d.is_dir():
        return fs, [FlowIssue(str(d), 0, "flows directory does not exist")]
    files = sorted([*d.glob("*.yaml"), *d.glob("*.yml")])
    parsed: list[Flow] = []  # every flow that parsed, usable or not, gets the cross-checks
    names: dict[str, str] = {}
    for path in files:
        flow, found = load_flow_file(path)
        issues.extend(found)
        if flow is None:
            continue
        if flow.name in names:
            where = names[flow.name]
            issues.append(FlowIssue(str(path), 1, f"flow name {flow.name!r} is already defined in {where}"))
            continue
        names[flow.name] = flow.file
        parsed.append(flow)
        if not found:
            fs.flows[flow.name] = flow
    from callcenter.ivr.loops import call_cycles, goto_traps  # loops builds on this module

    queues = set(known_queues) if known_queues is not None else None
    for flow in parsed:
        for sid, step in flow.steps.items():
            line = flow.lines[sid]
            if isinstance(step, CallStep) and step.call not in names:
                issues.append(
                    FlowIssue(flow.file, line, f"steps.{sid}: sub-flow {step.call!r} does not exist")
                )
            if (
                queues is not None
                and isinstance(step, QueueStep)
                and not has_placeholders(step.queue.name)
                and step.queue.name not in queues
            ):
                issues.append(
                    FlowIssue(
                        flow.file,
                        line,
                        f"steps.{sid}: unknown queue "
                        f"{step.queue.name!r} (known: {', '.join(sorted(queues))})",
                    )
                )
        for sid in unreachable_steps(flow):
            fs.warnings.append(
                FlowIssue(flow.file, flow.lines[sid], f"steps.{sid}: unreachable step", warning=True)
            )
        issues.extend(goto_traps(flow))
    issues.extend(call_cycles(parsed))
    return fs, issues


def load_flows(directory: Path | str, known_queues: Iterable[str] | None = None) -> FlowSet:
    """Load a flows directory or raise FlowLoadError listing every problem."""
    fs, issues = collect_flows(directory, known_queues)
    if issues:
        raise FlowLoadError(issues)
    return fs
