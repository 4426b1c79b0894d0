"""The flow language: one pydantic model per step kind.

A flow file is ``name``, optional ``start`` and an ordered mapping ``steps``
of step id → step. Each step has exactly one action key (``say``, ``menu``,
``queue`` …) plus common keys (``next``, ``barge_in``). A step without
``next`` continues with the following step in the file. Prompt texts are a
string or a mapping language → string, and may use ``{variables}``.
Conditions and priorities are :mod:`callcenter.ivr.expressions`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from callcenter.ivr.expressions import Expression, ExpressionError
from callcenter.ivr.templates import check_template


def _as_str(v: Any) -> Any:
    # YAML reads `key: 1` as an int and `key: *` oddly; keys and numbers are text here
    if isinstance(v, bool):
        return v
    return str(v) if isinstance(v, int | float) else v


Key = Annotated[str, BeforeValidator(_as_str)]


def _check_text(v: Any) -> Any:
    if isinstance(v, str):
        check_template(v)
    elif isinstance(v, dict):
        for text in v.values():
            if isinstance(text, str):
                check_template(text)
    return v


# A prompt: plain text, or per-language texts {en: ..., es: ...}
Text = Annotated[str | dict[str, str], BeforeValidator(_check_text)]


def _compile(v: Any) -> Any:
    if isinstance(v, Expression):
        return v
    if isinstance(v, bool | int | float):
        return Expression(repr(v))
    if not isinstance(v, str):
        raise ValueError("expected an expression (text)")
    try:
        return Expression(v)
    except ExpressionError as exc:
        raise ValueError(str(exc)) from None


Expr = Annotated[Expression, BeforeValidator(_compile)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)


class DigitSpec(_Strict):
    min: int = Field(1, ge=0, le=32)
    max: int = Field(1, ge=1, le=32)
    terminator: Key | None = "#"
    first_timeout: float = Field(5.0, gt=0, le=120)
    inter_digit_timeout: float = Field(3.0, gt=0, le=60)
    overall_timeout: float = Field(30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _bounds(self) -> DigitSpec:
        if self.min > self.max:
            raise ValueError(f"digits min {self.min} is greater than max {self.max}")
        if self.terminator is not None and self.terminator not in "#*0123456789ABCD":
            raise ValueError(f"terminator {self.terminator!r} is not a DTMF key")
        return self


class StepBase(_Strict):
    next: str | None = None
    barge_in: bool | None = None  # None = the step kind's default
    title: str | None = Field(None, max_length=80)  # the step in plain words for the agent ("Chose sales")

    kind: Literal[""] = ""  # overwritten per step kind

    def targets(self) -> list[str]:
        """Step ids this step may jump to (besides falling through)."""
        return [self.next] if self.next else []

    def falls_through(self) -> bool:
        return True


class SayStep(StepBase):
    kind: Literal["say"] = "say"
    say: Text


class PlayStep(StepBase):
    kind: Literal["play"] = "play"
    play: str  # audio file, relative to the flows directory; {variables} allowed


class MenuOption(_Strict):
    key: Key | None = None
    phrases: list[str] = []
    value: str | None = None  # stored in the menu's variable; default key or first phrase
    goto: str | None = None
    set: dict[str, Any] = {}

    @field_validator("phrases", mode="before")
    @classmethod
    def _one_phrase(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("key")
    @classmethod
    def _dtmf(cls, v: str | None) -> str | None:
        if v is not None and (len(v) != 1 or v not in "0123456789*#ABCD"):
            raise ValueError(f"menu key {v!r} must be one DTMF key (0-9, *, #, A-D)")
        return v

    @model_validator(mode="after")
    def _selectable(self) -> MenuOption:
        if self.key is None and not self.phrases:
            raise ValueError("a menu option needs a key or phrases")
        return self

    @property
    def chosen_value(self) -> str:
        return self.value or self.key or self.phrases[0]


class MenuBody(_Strict):
    prompt: Text
    options: list[MenuOption] = Field(min_length=1)
    name: str | None = None  # variable that receives the chosen option's value
    no_input: Text | None = None
    no_match: Text | None = None
    retries: int = Field(3, ge=1, le=10)
    timeout: float = Field(5.0, gt=0, le=60)
    min_confidence: float | None = Field(None, ge=0, le=1)
    default: str | None = None  # step when retries run out; None = hang up

    @model_validator(mode="after")
    def _unique(self) -> MenuBody:
        keys = [o.key for o in self.options if o.key]
        if len(keys) != len(set(keys)):
            raise ValueError(f"duplicate menu keys in {keys}")
        phrases = [p.lower() for o in self.options for p in o.phrases]
        if len(phrases) != len(set(phrases)):
            raise ValueError("the same phrase selects two options")
        return self


class MenuStep(StepBase):
    kind: Literal["menu"] = "menu"
    menu: MenuBody

    def targets(self) -> list[str]:
        t = [o.goto for o in self.menu.options if o.goto]
        return t + [x for x in (self.menu.default, self.next) if x]


class GatherBody(_Strict):
    name: str
    prompt: Text | None = None
    digits: DigitSpec | None = None
    phrases: list[str] | None = None  # speech against these phrases (alternative to digits)
    timeout: float = Field(5.0, gt=0, le=60)  # speech: no-input timeout
    retries: int = Field(2, ge=1, le=10)
    no_input: Text | None = None
    invalid: Text | None = None
    min_confidence: float | None = Field(None, ge=0, le=1)
    on_fail: str | None = None  # step when retries run out; None = continue with empty value
    # A card number or the like: the call recording pauses while it is collected, and the
    # value is never in an event, a log line or the IVR's result (docs/recording.md)
    sensitive: bool = False

    @model_validator(mode="after")
    def _mode(self) -> GatherBody:
        if self.digits is None and not self.phrases:
            raise ValueError("gather needs 'digits' or 'phrases' (or both)")
        return self


class GatherStep(StepBase):
    kind: Literal["gather"] = "gather"
    gather: GatherBody

    def targets(self) -> list[str]:
        return [x for x in (self.gather.on_fail, self.next) if x]


class LookupBody(_Strict):
    what: Literal["customer_by_ani", "customer_by_account", "order_status", "queue_wait"]
    key: str | None = None  # template, e.g. "{account}" or "ORD-{order_number}"
    queue: str | None = None  # for queue_wait
    into: str | None = None  # variable; default customer / order / wait
    found: str | None = None
    not_found: str | None = None

    @field_validator("key")
    @classmethod
    def _tmpl(cls, v: str | None) -> str | None:
        if v is not None:
            check_template(v)
        return v

    @model_validator(mode="after")
    def _needs(self) -> LookupBody:
        if self.what in ("customer_by_account", "order_status") and not self.key:
            raise ValueError(f"lookup {self.what} needs a 'key' (e.g. '{{account}}')")
        if self.what == "queue_wait" and not self.queue:
            raise ValueError("lookup queue_wait needs a 'queue'")
        return self

    @property
    def variable(self) -> str:
        return (
            self.into
            or {
                "customer_by_ani": "customer",
                "customer_by_account": "customer",
                "order_status": "order",
                "queue_wait": "wait",
            }[self.what]
        )


class LookupStep(StepBase):
    kind: Literal["lookup"] = "lookup"
    lookup: LookupBody

    def targets(self) -> list[str]:
        return [x for x in (self.lookup.found, self.lookup.not_found, self.next) if x]


class BranchCase(_Strict):
    when: Expr = Field(alias="if")
    goto: str

    model_config = ConfigDict(populate_by_name=True)


class BranchStep(StepBase):
    kind: Literal["branch"] = "branch"
    branch: list[BranchCase] = Field(min_length=1)

    def targets(self) -> list[str]:
        return [c.goto for c in self.branch] + ([self.next] if self.next else [])


class SetStep(StepBase):
    kind: Literal["set"] = "set"
    set: dict[str, Any]  # literal values; strings may use {variables}

    @field_validator("set")
    @classmethod
    def _values(cls, v: dict[str, Any]) -> dict[str, Any]:
        for value in v.values():
            if isinstance(value, str):
                check_template(value)
        return v


class QueueBody(_Strict):
    name: Key  # may be a template, e.g. "{department}"
    priority: Expr = Field(default_factory=lambda: Expression("0"))
    skills: dict[str, int] = {}  # skill → minimum level
    language_skill: bool = True  # also require the skill of the caller's language

    @field_validator("skills", mode="before")
    @classmethod
    def _list(cls, v: Any) -> Any:
        return dict.fromkeys(v, 1) if isinstance(v, list) else v


class QueueStep(StepBase):
    kind: Literal["queue"] = "queue"
    queue: QueueBody

    def falls_through(self) -> bool:
        return False


class VoicemailBody(_Strict):
    prompt: Text | None = None
    max_seconds: float = Field(120.0, gt=0, le=1800)
    beep: bool = True
    goodbye: Text | None = None


class VoicemailStep(StepBase):
    kind: Literal["voicemail"] = "voicemail"
    voicemail: VoicemailBody

    def falls_through(self) -> bool:
        return False


class CallbackBody(_Strict):
    queue: str | None = None  # default: the service's default queue
    prompt: Text | None = None  # "enter your number, or press # for this number"
    digits: DigitSpec = DigitSpec(min=0, max=15, terminator="#", overall_timeout=30)
    confirm: Text | None = None  # said after, e.g. "We will call you on {callback_number}"


class CallbackStep(StepBase):
    kind: Literal["callback"] = "callback"
    callback: CallbackBody

    def falls_through(self) -> bool:
        return False


class TransferBody(_Strict):
    uri: str
    on_failure: str | None = None

    @field_validator("uri")
    @classmethod
    def _sip(cls, v: str) -> str:
        if not v.startswith(("sip:", "sips:", "tel:", "{")):
            raise ValueError(f"transfer uri {v!r} must be a sip:, sips: or tel: URI")
        check_template(v)
        return v


class TransferStep(StepBase):
    kind: Literal["transfer"] = "transfer"
    transfer: TransferBody

    def targets(self) -> list[str]:
        return [x for x in (self.transfer.on_failure,) if x]

    def falls_through(self) -> bool:
        return False


class HangupStep(StepBase):
    kind: Literal["hangup"] = "hangup"
    hangup: Text | bool | None = None  # optional goodbye prompt
    outcome: Literal["hangup", "self_served"] = "hangup"  # how the record counts this end

    def falls_through(self) -> bool:
        return False


class GotoStep(StepBase):
    kind: Literal["goto"] = "goto"
    goto: str

    def targets(self) -> list[str]:
        return [self.goto]

    def falls_through(self) -> bool:
        return False


class CallStep(StepBase):
    """Run another flow as a sub-flow; its ``return`` (or its end) comes back here."""

    kind: Literal["call"] = "call"
    call: str


class ReturnStep(StepBase):
    kind: Literal["return"] = "return"
    return_: Any = Field(None, alias="return")

    def falls_through(self) -> bool:
        return False


STEP_MODELS: dict[str, type[StepBase]] = {
    "say": SayStep,
    "play": PlayStep,
    "menu": MenuStep,
    "gather": GatherStep,
    "lookup": LookupStep,
    "branch": BranchStep,
    "set": SetStep,
    "queue": QueueStep,
    "voicemail": VoicemailStep,
    "callback": CallbackStep,
    "transfer": TransferStep,
    "hangup": HangupStep,
    "goto": GotoStep,
    "call": CallStep,
    "return": ReturnStep,
}

Step = (
    SayStep | PlayStep | MenuStep | GatherStep | LookupStep | BranchStep | SetStep | QueueStep
    | VoicemailStep | CallbackStep | TransferStep | HangupStep | GotoStep | CallStep | ReturnStep
)  # fmt: skip


class FlowHeader(_Strict):
    name: str
    description: str = ""
    start: str | None = None
    steps: dict[str, Any] = Field(min_length=1)


class Flow(BaseModel):
    """A validated flow; ``order`` keeps the file order for fall-through."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    name: str
    file: str
    description: str = ""
    start: str
    steps: dict[str, Any]  # id → Step (typed loosely: pydantic unions of 15 models are slow)
    order: tuple[str, ...]
    lines: dict[str, int] = {}

    def step(self, step_id: str) -> StepBase:
        return self.steps[step_id]

    def following(self, step_id: str) -> str | None:
        i = self.order.index(step_id)
        return self.order[i + 1] if i + 1 < len(self.order) else None
