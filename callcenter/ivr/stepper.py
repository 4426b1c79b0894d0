"""The flow stepper: the IVR's functional core.

A ``FlowStepper`` walks a flow over plain data. It never awaits anything:
it hands the shell an *action* (play this prompt, collect these digits, look
this up …), and the shell answers with the action's result via ``send``.
Time comes from an injected clock, events go to an injected ``emit``, so a
whole call can be stepped in a unit test with scripted answers.

Internally the walk is a generator — the most direct way to write "prompt,
wait for the answer, retry twice" — but callers only see ``start()`` and
``send(result)`` returning the next action, ending with ``Done``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from callcenter.events import (
    BranchTaken,
    CallbackRequested,
    Event,
    FlowEntered,
    IvrCompleted,
    IvrInputCollected,
    PromptPlayed,
    RecordingPaused,
    VoicemailRecorded,
)
from callcenter.ivr.flow_model import (
    BranchStep,
    CallbackStep,
    CallStep,
    DigitSpec,
    Flow,
    GatherStep,
    GotoStep,
    HangupStep,
    LookupStep,
    MenuOption,
    MenuStep,
    PlayStep,
    QueueStep,
    ReturnStep,
    SayStep,
    SetStep,
    StepBase,
    TransferStep,
    VoicemailStep,
)
from callcenter.ivr.flows import FlowSet
from callcenter.ivr.ports import CustomerInfo, DigitRules, InputSpec, OrderInfo, Recording, UserInput
from callcenter.ivr.services import Service
from callcenter.ivr.templates import render

log = logging.getLogger(__name__)

MAX_STEPS = 500  # a goto loop in a flow must end the call, not spin forever
MAX_DEPTH = 8  # sub-flow nesting


# --- actions the shell performs ------------------------------------------------


@dataclass(frozen=True, slots=True)
class PromptAction:
    step: str
    text: str | None
    audio: str | None
    language: str
    barge_in: InputSpec | None


@dataclass(frozen=True, slots=True)
class CollectAction:
    step: str
    spec: InputSpec
    initial: UserInput | None = None


@dataclass(frozen=True, slots=True)
class LookupAction:
    step: str
    what: str  # customer_by_ani | customer_by_account | order_status | queue_wait
    key: str
    customer_id: str | None = None


@dataclass(frozen=True, slots=True)
class RecordAction:
    step: str
    path: str
    max_seconds: float
    beep: bool


@dataclass(frozen=True, slots=True)
class TransferAction:
    step: str
    uri: str


@dataclass(frozen=True, slots=True)
class HangupAction:
    step: str


@dataclass(frozen=True, slots=True)
class IvrResult:
    """How the IVR part of the call ended; what routing and the record need."""

    outcome: str  # queued | self_served | voicemail | callback | transferred | hangup
    path: tuple[str, ...]
    variables: dict[str, Any]
    queue: str | None = None
    priority: int = 0
    skills: dict[str, int] = field(default_factory=dict)
    callback_number: str | None = None
    voicemail: Recording | None = None
    transfer_uri: str | None = None


@dataclass(frozen=True, slots=True)
class Done:
    result: IvrResult


Action = PromptAction | CollectAction | LookupAction | RecordAction | TransferAction | HangupAction | Done


class _End(Exception):
    def __init__(self, result: IvrResult) -> None:
        self.result = result


def _rules(spec: DigitSpec) -> DigitRules:
    return DigitRules(
        min=spec.min,
        max=spec.max,
        terminator=spec.terminator,
        first_timeout=spec.first_timeout,
        inter_digit_timeout=spec.inter_digit_timeout,
        overall_timeout=spec.overall_timeout,
    )


# Variables the engine itself maintains; reported in IvrCompleted.data separately.
_SYSTEM_VARS = frozenset({"ani", "dnis", "service", "open", "default_queue", "anonymous",
                          "language_skill", "customer", "order", "language"})  # fmt: skip


class FlowStepper:
    """Steps one call through a service's flow.

    ``clock`` returns an aware datetime (business hours, event times);
    ``emit`` receives every event in order. ``language_skills`` maps a
    language code to the routing skill that speaks it.
    """

    def __init__(
        self,
        flows: FlowSet,
        service: Service,
        *,
        contact_id: str,
        ani: str,
        dnis: str,
        clock: Callable[[], datetime],
        emit: Callable[[Event], None],
        language_skills: dict[str, str] | None = None,
        voicemail_dir: Path | str = "var/voicemail",
        flow_name: str | None = None,
    ) -> None:
        self.flows = flows
        self.service = service
        self.contact_id = contact_id
        self.clock = clock
        self._emit = emit
        self.language_skills = language_skills or {"en": "english", "es": "spanish"}
        self.voicemail_dir = Path(voicemail_dir)
        is_open = service.is_open(clock())
        if flow_name is None:
            flow_name = service.flow
            if not is_open and service.after_hours.action == "flow" and service.after_hours.flow:
                flow_name = service.after_hours.flow
        self.entry_flow = flow_name
        lang = service.languages.default
        # withheld callers arrive as "", "anonymous", "unknown"…: no digits, no lookup
        ani = ani.strip() if any(c.isdigit() for c in ani) else ""
        self.vars: dict[str, Any] = {
            "ani": ani,
            "dnis": dnis,
            "anonymous": not ani,
            "service": service.name,
            "language": lang,
            "language_skill": self.language_skills.get(lang),
            "open": is_open,
            "default_queue": service.default_queue,
            "customer": None,
            "priority": 0,
        }
        self.collected: dict[str, str] = {}  # what the caller answered, by variable name
        self.sensitive: set[str] = set()  # variables of sensitive fields: never in an event or the result
        self.path: list[str] = []
        self._pending: UserInput | None = None  # type-ahead from an interrupted say
        self._language_chosen = False  # the caller picked a language: the CRM must not override
        self._gen: Generator[Action, Any, None] | None = None
        self._steps_run = 0
        self._voicemails = 0
        self._recording: Recording | None = None
        self.result: IvrResult | None = None

    # --- public driving interface ------------------------------------------

    def start(self) -> Action:
        self._gen = self._run()
        return self._advance(None, first=True)

    def send(self, result: Any) -> Action:
        if self._gen is None or self.result is not None:
            raise RuntimeError("stepper is not running")
        return self._advance(result)

    def caller_hung_up(self) -> IvrResult:
        """The caller left mid-flow: close the generator and report the end."""
        if self.result is not None:
            return self.result
        if self._gen is not None:
            self._gen.close()
        if self._recording is not None:  # hung up after leaving a message: that is a voicemail
            return self._finish("voicemail", ended_by="caller", voicemail=self._recording)
        return self._finish("hangup", ended_by="caller")

    # --- internals -----------------------------------------------------------

    def _advance(self, value: Any, first: bool = False) -> Action:
        assert self._gen is not None
        try:
            action = next(self._gen) if first else self._gen.send(value)
        except _End as end:
            self.result = end.result
            return Done(end.result)
        except StopIteration:  # pragma: no cover - _run always ends with _End
            return Done(self._finish("hangup"))
        return action

    def emit(self, event_type: type[Event], **fields: Any) -> None:
        event = event_type(contact_id=self.contact_id, ts=self.clock().timestamp(), **fields)
        try:
            self._emit(event)
        except Exception:  # a broken subscriber must not break the caller's call
            log.exception("IVR event handler failed for %s", event.type)

    def _finish(self, outcome: str, *, ended_by: str = "", **kw: Any) -> IvrResult:
        variables = {k: v for k, v in self.vars.items() if k not in _SYSTEM_VARS and k not in self.sensitive}
        customer = self.vars.get("customer") or {}
        data: dict[str, Any] = {
            "service": self.service.name,
            "flow": self.entry_flow,
            "language": self.vars.get("language"),
            "ani": self.vars.get("ani"),
            "dnis": self.vars.get("dnis"),
            "customer_id": customer.get("id") if isinstance(customer, dict) else None,
            "collected": {k: v for k, v in self.collected.items() if k not in self.sensitive},
            "variables": variables,
        }
        if ended_by:
            data["ended_by"] = ended_by
        for k in ("queue", "priority", "skills", "callback_number", "transfer_uri"):
            if kw.get(k) not in (None, {}):
                data[k] = kw[k]
        if kw.get("voicemail") is not None:
            data["voicemail"] = kw["voicemail"].path
        if "error" in kw:
            data["error"] = kw.pop("error")
        result = IvrResult(outcome=outcome, path=tuple(self.path), variables=variables,
                           **{k: v for k, v in kw.items() if v is not None})  # fmt: skip
        self.result = result
        self.emit(IvrCompleted, outcome=outcome, path=result.path, data=data)
        return result

    def _end(self, outcome: str, **kw: Any) -> _End:
        return _End(self._finish(outcome, **kw))

    def text_for(self, text: str | dict[str, str] | None) -> tuple[str | None, str]:
        """Pick the caller's language from a per-language prompt, then fill variables."""
        lang = str(self.vars.get("language") or self.service.languages.default)
        if text is None:
            return None, lang
        if isinstance(text, dict):
            chosen = text.get(lang)
            if chosen is None:
                chosen = text.get(self.service.languages.default)
                if chosen is None:
                    lang, chosen = next(iter(text.items()))
                else:
                    lang = self.service.languages.default
            text = chosen
        return render(text, self.vars), lang

    def _set_language(self, lang: str) -> None:
        self.vars["language"] = lang
        self.vars["language_skill"] = self.language_skills.get(lang)

    def _set(self, name: str, value: Any) -> None:
        if isinstance(value, str):
            value = render(value, self.vars)
        if name == "language":
            self._language_chosen = True
            self._set_language(str(value))
        else:
            self.vars[name] = value

    # --- the walk -------------------------------------------------------------

    def _run(self) -> Generator[Action, Any, None]:
        stack: list[tuple[Flow, str | None]] = []  # (caller flow, step to resume at)
        flow = self.flows[self.entry_flow]
        self.emit(FlowEntered, flow=flow.name, language=self.vars["language"])
        if not self.vars["open"] and self.service.after_hours.action == "hangup":
            text, lang = self.text_for(self.service.after_hours.message)
            if text:
                yield from self._say("after_hours", text, None, lang, barge=None)
            yield HangupAction("after_hours")
            raise self._end("hangup")
        current: str | None = flow.start
        while True:
            if current is None:
                # fell off the end of a flow: a sub-flow returns, the top flow ends the call
                if stack:
                    flow, current = stack.pop()
                    continue
                yield HangupAction("end")
                raise self._end("hangup")
            self._steps_run += 1
            if self._steps_run > MAX_STEPS:
                log.error("flow %s ran %d steps; ending the call", flow.name, MAX_STEPS)
                yield HangupAction(current)
                raise self._end("hangup", ended_by="system", error="step limit reached (loop in flow?)")
            step = flow.step(current)
            label = current if flow.name == self.entry_flow else f"{flow.name}.{current}"
            self.path.append(label)
            after = step.next or (flow.following(current) if step.falls_through() else None)
            if isinstance(step, CallStep):
                if len(stack) >= MAX_DEPTH:
                    log.error("flow %s: sub-flows nested %d deep at %s; ending the call",
                              flow.name, MAX_DEPTH, label)  # fmt: skip
                    yield HangupAction(label)
                    raise self._end("hangup", ended_by="system", error="sub-flow nesting too deep")
                stack.append((flow, after))
                flow = self.flows[step.call]
                self.emit(FlowEntered, flow=flow.name, language=self.vars["language"])
                current = flow.start
                continue
            if isinstance(step, ReturnStep):
                if not stack:  # `return` in the top flow ends the call like falling off its end
                    yield HangupAction(label)
                    raise self._end("hangup")
                flow, current = stack.pop()
                continue
            jump = yield from self._do(step, label, after)
            current = jump

    def _do(self, step: StepBase, label: str, after: str | None) -> Generator[Action, Any, str | None]:
        """Run one step; returns the id of the next step (None = end of flow)."""
        if isinstance(step, SayStep):
            text, lang = self.text_for(step.say)
            barge = InputSpec(digits=DigitRules(max=32), language=lang) if step.barge_in else None
            yield from self._say(label, text, None, lang, barge)
            return after
        if isinstance(step, PlayStep):
            audio = self._audio_path(render(step.play, self.vars))
            _, lang = self.text_for(None)
            barge = InputSpec(digits=DigitRules(max=32), language=lang) if step.barge_in else None
            if audio is not None:
                yield from self._say(label, None, audio, lang, barge)
            return after
        if isinstance(step, MenuStep):
            return (yield from self._menu(step, label, after))
        if isinstance(step, GatherStep):
            return (yield from self._gather(step, label, after))
        if isinstance(step, LookupStep):
            return (yield from self._lookup(step, label, after))
        if isinstance(step, BranchStep):
            for case in step.branch:
                if case.when.truth(self.vars):
                    self.emit(BranchTaken, step=label, target=case.goto, reason=case.when.source)
                    return case.goto
            target = after or ""
            self.emit(BranchTaken, step=label, target=target, reason="else")
            return after
        if isinstance(step, SetStep):
            for name, value in step.set.items():
                self._set(name, value)
            return after
        if isinstance(step, GotoStep):
            return step.goto
        if isinstance(step, QueueStep):
            self._queue(step)
        if isinstance(step, VoicemailStep):
            yield from self._voicemail(step, label)
        if isinstance(step, CallbackStep):
            yield from self._callback(step, label)
        if isinstance(step, TransferStep):
            uri = render(step.transfer.uri, self.vars)
            ok = yield TransferAction(label, uri)
            if ok:
                raise self._end("transferred", transfer_uri=uri)
            target = step.transfer.on_failure
            self.emit(BranchTaken, step=label, target=target or "", reason="transfer failed")
            if target:
                return target
            yield HangupAction(label)
            raise self._end("hangup", error=f"transfer to {uri} failed")
        if isinstance(step, HangupStep):
            if step.hangup and not isinstance(step.hangup, bool):
                text, lang = self.text_for(step.hangup)
                yield from self._say(label, text, None, lang, None)
            yield HangupAction(label)
            raise self._end(step.outcome)
        raise AssertionError(f"unhandled step kind {step.kind}")  # pragma: no cover

    def _audio_path(self, rendered: str) -> str | None:
        p = Path(rendered)
        if ".." in p.parts:
            log.warning("refusing audio path %r (leaves the flows directory)", rendered)
            return None
        if not p.is_absolute() and self.flows.directory is not None:
            p = self.flows.directory / p
        return str(p)

    def _say(
        self, label: str, text: str | None, audio: str | None, lang: str, barge: InputSpec | None
    ) -> Generator[Action, Any, UserInput | None]:
        if not text and not audio:
            return None
        got = yield PromptAction(label, text, audio, lang, barge)
        interrupted = got is not None and got.how != "none"
        self.emit(PromptPlayed, step=label, text=text or "", audio=audio or "",
                  interrupted=interrupted)  # fmt: skip
        if interrupted:
            self._pending = got
            return got
        return None

    def _take_pending(self) -> UserInput | None:
        got, self._pending = self._pending, None
        return got

    def _menu(self, step: MenuStep, label: str, after: str | None) -> Generator[Action, Any, str | None]:
        m = step.menu
        name = m.name or label.rsplit(".", 1)[-1]
        keys = [o.key for o in m.options if o.key]
        phrases = tuple(p for o in m.options for p in o.phrases) or None
        barge_ok = step.barge_in is not False
        reprompt: str | dict[str, str] | None = None
        for attempt in range(1, m.retries + 1):
            _, lang = self.text_for(None)
            spec = InputSpec(
                digits=DigitRules(max=1, terminator=None, first_timeout=m.timeout) if keys else None,
                phrases=phrases,
                timeout=m.timeout,
                language=lang,
            )
            got = self._take_pending()
            if got is None and reprompt is not None:
                text, lang = self.text_for(reprompt)
                got = yield from self._say(label, text, None, lang, spec if barge_ok else None)
                self._pending = None
            if got is None:
                text, lang = self.text_for(m.prompt)
                got = yield from self._say(label, text, None, lang, spec if barge_ok else None)
                self._pending = None
            if got is None or got.how == "none":
                got = yield CollectAction(label, spec)
            option = self._match(m.options, got, m.min_confidence)
            self._collected(label, name, got, got.value if option is not None else None)
            if option is not None:
                value = option.chosen_value
                self.vars[name] = value
                self.collected[name] = value
                for k, v in option.set.items():
                    self._set(k, v)
                target = option.goto or after
                how = "key" if got.how == "dtmf" else "speech"
                self.emit(BranchTaken, step=label, target=target or "",
                          reason=f"{how} {got.value!r} (attempt {attempt})")  # fmt: skip
                return target
            reprompt = m.no_input if got.how == "none" else m.no_match
        target = m.default
        self.emit(BranchTaken, step=label, target=target or "", reason="retries exhausted")
        if target:
            return target
        yield HangupAction(label)
        raise self._end("hangup", error=f"no valid answer at menu {label}")

    def _collected(self, label: str, name: str, got: UserInput, value: str | None) -> None:
        """The record of one answer; ``value`` None = it matched nothing, and the record must
        not read as if it had (a no-match recognised as "one" at confidence 0.0). A sensitive
        field's answer is recorded as given or not, never what it was."""
        if name in self.sensitive:
            self.emit(IvrInputCollected, step=label, name=name, value="", how=got.how,
                      matched=value is not None, sensitive=True)  # fmt: skip
        elif value is not None:
            self.emit(IvrInputCollected, step=label, name=name, value=value, how=got.how,
                      confidence=got.confidence)  # fmt: skip
        else:
            self.emit(IvrInputCollected, step=label, name=name, value="", how=got.how,
                      confidence=got.confidence, matched=False, heard=got.value or got.text)  # fmt: skip

    @staticmethod
    def _match(options: list[MenuOption], got: UserInput, min_conf: float | None) -> MenuOption | None:
        if got.how == "dtmf" and got.value:
            key = got.value[0]
            return next((o for o in options if o.key == key), None)
        if got.how == "speech" and got.value:
            if min_conf is not None and got.confidence < min_conf:
                return None
            said = got.value.strip().lower()
            return next((o for o in options if said in (p.lower() for p in o.phrases)), None)
        return None

    def _gather(self, step: GatherStep, label: str, after: str | None) -> Generator[Action, Any, str | None]:
        if not step.gather.sensitive:
            return (yield from self._gather_field(step, label, after))
        # PCI: the recording is silent from before the prompt (keys typed ahead) until the
        # field is done, however the step ends (a hang-up closes this generator too)
        self.sensitive.add(step.gather.name)
        self.emit(RecordingPaused, paused=True, by="ivr", reason=f"sensitive field at {label}")
        try:
            return (yield from self._gather_field(step, label, after))
        finally:
            self.emit(RecordingPaused, paused=False, by="ivr", reason=f"sensitive field at {label}")

    def _gather_field(
        self, step: GatherStep, label: str, after: str | None
    ) -> Generator[Action, Any, str | None]:
        g = step.gather
        barge_ok = step.barge_in is not False
        rules = _rules(g.digits) if g.digits else None
        reprompt: str | dict[str, str] | None = None
        for _attempt in range(g.retries):
            _, lang = self.text_for(None)
            spec = InputSpec(
                digits=rules,
                phrases=tuple(g.phrases) if g.phrases else None,
                timeout=rules.first_timeout if rules else g.timeout,
                language=lang,
            )
            got = self._take_pending()
            if got is None:
                for prompt in (reprompt, g.prompt):
                    if prompt is None:
                        continue
                    text, lang = self.text_for(prompt)
                    got = yield from self._say(label, text, None, lang, spec if barge_ok else None)
                    self._pending = None
                    if got is not None:
                        break
            partial = got is not None and got.how == "dtmf" and rules and not self._done(got, rules)
            if got is None or got.how == "none" or partial:
                initial = got if got is not None and got.how == "dtmf" else None
                got = yield CollectAction(label, spec, initial)
            value = self._valid(got, g.digits, g.min_confidence)
            self._collected(label, g.name, got, value)
            if value is not None:
                self.vars[g.name] = value
                self.collected[g.name] = value
                return after
            reprompt = g.no_input if got.how == "none" else g.invalid
        self.vars[g.name] = ""
        if g.on_fail:
            self.emit(BranchTaken, step=label, target=g.on_fail, reason="retries exhausted")
            return g.on_fail
        return after

    @staticmethod
    def _done(got: UserInput, rules: DigitRules) -> bool:
        return got.terminated or len(got.value) >= rules.max

    @staticmethod
    def _valid(got: UserInput, digits: DigitSpec | None, min_conf: float | None) -> str | None:
        if got.how == "dtmf" and digits is not None:
            value = got.value
            if digits.terminator and value.endswith(digits.terminator):
                value = value[: -len(digits.terminator)]
            if (digits.min <= len(value) <= digits.max and value.isdigit()) or (
                digits.min == 0 and value == ""
            ):
                return value
            return None
        if got.how == "speech" and got.value:
            if min_conf is not None and got.confidence < min_conf:
                return None
            return got.value
        return None

    def _lookup(self, step: LookupStep, label: str, after: str | None) -> Generator[Action, Any, str | None]:
        lk = step.lookup
        if lk.what == "customer_by_ani":
            key = str(self.vars.get("ani") or "")
        elif lk.what == "queue_wait":
            key = render(lk.queue or "", self.vars)
        else:
            key = render(lk.key or "", self.vars)
        customer = self.vars.get("customer")
        customer_id = customer.get("id") if isinstance(customer, dict) else None
        found: Any = None
        if key:  # an anonymous caller or an empty answer is simply "not found"
            found = yield LookupAction(label, lk.what, key, customer_id)
        if isinstance(found, CustomerInfo):
            self.vars[lk.variable] = found.as_vars()
            if (
                found.language
                and not self._language_chosen
                and found.language in self.service.languages.offered
            ):
                self._set_language(found.language)  # don't ask what the CRM already knows
            if found.account and not self.vars.get("account"):
                self.vars["account"] = found.account
        elif isinstance(found, OrderInfo):
            self.vars[lk.variable] = found.as_vars()
        elif isinstance(found, int | float) and not isinstance(found, bool):
            self.vars[lk.variable] = found
        else:
            found = None
            self.vars[lk.variable] = None
        target = (lk.found if found is not None else lk.not_found) or after
        if lk.found or lk.not_found:
            self.emit(BranchTaken, step=label, target=target or "",
                      reason=f"{lk.what} {'found' if found is not None else 'not found'}")  # fmt: skip
        return target

    def _queue(self, step: QueueStep) -> None:
        q = step.queue
        name = render(q.name, self.vars) or self.service.default_queue
        try:
            priority = int(q.priority.evaluate(self.vars) or 0)
        except (TypeError, ValueError):
            log.warning("queue priority %r did not give a number; using 0", q.priority.source)
            priority = 0
        skills = {render(k, self.vars): v for k, v in q.skills.items()}
        skills = {k: v for k, v in skills.items() if k}
        lang_skill = self.vars.get("language_skill")
        if q.language_skill and lang_skill:
            skills.setdefault(str(lang_skill), 1)
        raise self._end("queued", queue=name, priority=priority, skills=skills)

    def _voicemail(self, step: VoicemailStep, label: str) -> Generator[Action, Any, None]:
        vm = step.voicemail
        text, lang = self.text_for(vm.prompt)
        yield from self._say(label, text, None, lang, None)
        self._voicemails += 1
        path = self.voicemail_dir / f"{self.contact_id or 'call'}-{self._voicemails}.wav"
        rec = yield RecordAction(label, str(path), vm.max_seconds, vm.beep)
        if rec is not None:
            self._recording = rec
            self.emit(VoicemailRecorded, path=rec.path, size=rec.size, sha256=rec.sha256,
                      duration_s=rec.seconds)  # fmt: skip
        text, lang = self.text_for(vm.goodbye)
        yield from self._say(label, text, None, lang, None)
        yield HangupAction(label)
        if rec is None:
            raise self._end("hangup", error="voicemail: nothing recorded")
        raise self._end("voicemail", voicemail=rec)

    def _callback(self, step: CallbackStep, label: str) -> Generator[Action, Any, None]:
        cb = step.callback
        queue = cb.queue or self.service.default_queue
        rules = _rules(cb.digits)
        _, lang = self.text_for(None)
        spec = InputSpec(digits=rules, timeout=rules.first_timeout, language=lang)
        number = ""
        for _attempt in range(2):
            text, lang = self.text_for(cb.prompt)
            got = yield from self._say(label, text, None, lang, spec)
            self._pending = None
            if got is None or not self._done(got, rules):
                got = yield CollectAction(label, spec, got if got and got.how == "dtmf" else None)
            entered = got.value.rstrip("#") if got.how == "dtmf" else ""
            number = entered if len(entered) >= 3 else str(self.vars.get("ani") or "")
            self.emit(IvrInputCollected, step=label, name="callback_number", value=number,
                      how=got.how if entered else "none", confidence=got.confidence)  # fmt: skip
            if number:
                break
        if not number:
            yield HangupAction(label)
            raise self._end("hangup", error="callback: no number to call back")
        self.vars["callback_number"] = number
        self.collected["callback_number"] = number
        self.emit(CallbackRequested, number=number)
        text, lang = self.text_for(cb.confirm)
        yield from self._say(label, text, None, lang, None)
        yield HangupAction(label)
        raise self._end("callback", queue=queue, callback_number=number,
                        priority=int(self.vars.get("priority") or 0))  # fmt: skip
