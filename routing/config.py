"""Routing configuration: skills, queues, agents and engine settings.

Validated from plain dicts (as loaded from YAML) by pydantic. Every error
names the key path and the reason; callers add the file name. Cross-file
references (a queue naming an unknown skill, an overflow target that does not
exist) are checked by :func:`check_references`, because pydantic sees one file
at a time.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CHANNELS = frozenset({"voice", "fax", "email", "web"})

MAX_LEVEL = 10  # skill levels are 1..MAX_LEVEL everywhere (config, submissions, indexes, Lua)
Level = Annotated[int, Field(ge=1, le=MAX_LEVEL)]
Seconds = Annotated[float, Field(ge=0)]


class ConfigError(ValueError):
    """Invalid routing configuration; ``problems`` holds one ``key: reason`` line each."""

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        prefix = f"{source}: " if source else ""
        super().__init__("\n".join(prefix + p for p in problems))


class _Strict(BaseModel):
    # Unknown keys are refused: a typo such as `max_wiat_s` must not be ignored silently.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Strategy(StrEnum):
    LONGEST_IDLE = "longest_idle"
    MOST_SKILLED = "most_skilled"
    LEAST_OCCUPIED = "least_occupied"
    ROUND_ROBIN = "round_robin"
    FEWEST_CONTACTS = "fewest_contacts"


class Skill(_Strict):
    description: str = ""
    kind: str = "skill"  # e.g. "language"; informational


class ServiceLevel(_Strict):
    percent: float = Field(80.0, gt=0, le=100)
    seconds: float = Field(20.0, gt=0)


class Aging(_Strict):
    """Priority grows linearly with waiting time, so low priority never starves."""

    priority_per_minute: float = Field(1.0, ge=0)


class EscalationStep(_Strict):
    """After ``after_s`` seconds in the queue, apply every action given."""

    after_s: float = Field(gt=0)
    relax: dict[str, Level] = {}  # skill -> new (lower) minimum level
    drop_required: list[str] = []
    drop_preferred: list[str] = []
    widen_groups: list[str] = []  # agent groups added to the queue's allowed groups
    raise_priority: int = 0
    move_to: str | None = None  # another queue

    @model_validator(mode="after")
    def _has_action(self) -> EscalationStep:
        if not (
            self.relax
            or self.drop_required
            or self.drop_preferred
            or self.widen_groups
            or self.raise_priority
            or self.move_to
        ):
            raise ValueError(
                "an escalation step needs at least one action: relax, drop_required, "
                "drop_preferred, widen_groups, raise_priority or move_to"
            )
        return self


Disposition = Annotated[str, Field(pattern=r"^[a-z0-9_]{1,64}$")]  # an id: the desk shows no_sale as No sale


class Queue(_Strict):
    description: str = ""
    required_skills: dict[str, Level] = {}
    preferred_skills: dict[str, Level] = {}
    groups: list[str] = []  # agent groups allowed; empty = any agent
    strategy: Strategy = Strategy.LONGEST_IDLE
    service_level: ServiceLevel = ServiceLevel()
    max_wait_s: float | None = Field(None, gt=0)
    max_size: int | None = Field(None, ge=1)
    overflow: str | None = None
    escalation: list[EscalationStep] = []
    aging: Aging = Aging()
    weight: float = 0.0  # added to effective priority when an agent chooses between queues
    reservation_timeout_s: float = Field(15.0, gt=0)
    wrap_up_s: Seconds = 0.0  # 0 = wrap-up ends only when the agent says so
    preferred_agent_timeout_s: Seconds = 0.0  # 0 = preferred agent is only a tie-break
    # Wrap-up outcomes the agent chooses from (routing keeps them only for the desk); empty:
    # the settings' list.
    dispositions: list[Disposition] = []

    @field_validator("escalation")
    @classmethod
    def _steps_in_order(cls, steps: list[EscalationStep]) -> list[EscalationStep]:
        times = [s.after_s for s in steps]
        if times != sorted(times):
            raise ValueError(f"escalation steps must be in increasing after_s order, got {times}")
        return steps


class Settings(_Strict):
    # A contact on one of these channels takes the whole agent (no chat during a call).
    exclusive_channels: list[str] = ["voice"]
    stats_window_s: float = Field(900.0, gt=0)
    default_aht_s: float = Field(180.0, gt=0)  # used until the window has handle times
    dispositions: list[Disposition] = Field(  # every queue's unless it names its own
        ["resolved", "sale", "no_sale", "callback", "escalated", "wrong_number"], min_length=1
    )

    @field_validator("exclusive_channels")
    @classmethod
    def _known(cls, chans: list[str]) -> list[str]:
        bad = sorted(set(chans) - CHANNELS)
        if bad:
            raise ValueError(f"unknown channel(s) {bad}; known: {sorted(CHANNELS)}")
        return chans


class AgentConfig(_Strict):
    id: str
    name: str = ""
    skills: dict[str, Level] = {}
    capacity: dict[str, Annotated[int, Field(ge=0)]] = {"voice": 1}
    groups: list[str] = []

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        # YAML reads `id: 1001` as an int; extensions are identifiers, not numbers.
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("id")
    @classmethod
    def _id_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("agent id must not be empty")
        return value

    @field_validator("capacity")
    @classmethod
    def _channels(cls, cap: dict[str, int]) -> dict[str, int]:
        bad = sorted(set(cap) - CHANNELS)
        if bad:
            raise ValueError(f"unknown channel(s) {bad}; known: {sorted(CHANNELS)}")
        return cap


class RoutingConfig(_Strict):
    skills: dict[str, Skill] = {}
    queues: dict[str, Queue] = {}
    agents: list[AgentConfig] = []
    settings: Settings = Settings()


def _problems(exc: ValidationError, root: str) -> list[str]:
    out = []
    for err in exc.errors():
        path = ".".join(str(p) for p in (root, *err["loc"]) if p != "")
        out.append(f"{path}: {err['msg']}")
    return out


def check_references(config: RoutingConfig) -> list[str]:
    """Cross-references that one file cannot check; returns ``key: reason`` lines."""
    problems: list[str] = []
    known = set(config.skills)

    def skills_ok(where: str, names: Any) -> None:
        for name in names:
            if name not in known:
                problems.append(f"{where}: unknown skill {name!r} (known: {sorted(known)})")

    for qname, q in config.queues.items():
        base = f"queues.{qname}"
        skills_ok(f"{base}.required_skills", q.required_skills)
        skills_ok(f"{base}.preferred_skills", q.preferred_skills)
        if q.overflow is not None and q.overflow not in config.queues:
            problems.append(f"{base}.overflow: queue {q.overflow!r} does not exist")
        if q.overflow == qname:
            problems.append(f"{base}.overflow: a queue cannot overflow to itself")
        for i, step in enumerate(q.escalation):
            sbase = f"{base}.escalation.{i}"
            skills_ok(f"{sbase}.relax", step.relax)
            skills_ok(f"{sbase}.drop_required", step.drop_required)
            skills_ok(f"{sbase}.drop_preferred", step.drop_preferred)
            if step.move_to is not None and step.move_to not in config.queues:
                problems.append(f"{sbase}.move_to: queue {step.move_to!r} does not exist")
            if step.move_to == qname:
                problems.append(f"{sbase}.move_to: a step cannot move a task to its own queue")
            for skill, level in step.relax.items():
                current = q.required_skills.get(skill)
                if current is not None and level > current:
                    problems.append(
                        f"{sbase}.relax.{skill}: {level} is above the queue's minimum {current}; "
                        "relax only lowers a level"
                    )
    seen: set[str] = set()
    for i, agent in enumerate(config.agents):
        if agent.id in seen:
            problems.append(f"agents.{i}.id: duplicate agent id {agent.id!r}")
        seen.add(agent.id)
        skills_ok(f"agents.{i}.skills", agent.skills)
    return problems


def build_config(
    skills: dict[str, Any] | None = None,
    queues: dict[str, Any] | None = None,
    agents: list[dict[str, Any]] | None = None,
) -> RoutingConfig:
    """Validate the three documents (as loaded from YAML) into one config.

    ``skills`` is the whole skills.yaml document (``{"skills": {...}}``);
    ``queues`` is the whole queues.yaml document (``{"queues": {...}, "settings": {...}}``);
    ``agents`` is the list of agent entries (callcenter strips its own keys first).
    Raises :class:`ConfigError` listing every problem as ``key.path: reason``.
    """
    problems: list[str] = []
    parts: dict[str, Any] = {}
    for root, doc, allowed in (
        ("skills", skills, {"skills"}),
        ("queues", queues, {"queues", "settings"}),
    ):
        doc = doc or {}
        if not isinstance(doc, dict):
            problems.append(f"{root}: expected a mapping, got {type(doc).__name__}")
            continue
        problems.extend(
            f"{key}: unknown top-level key (expected one of {sorted(allowed)})"
            for key in sorted(set(doc) - allowed, key=str)
        )
        try:
            validated = RoutingConfig.model_validate({root: doc.get(root) or {}})
            parts[root] = getattr(validated, root)
        except ValidationError as exc:
            problems.extend(_problems(exc, ""))
    settings_doc = queues.get("settings") if isinstance(queues, dict) else None
    try:
        parts["settings"] = Settings.model_validate(settings_doc or {})
    except ValidationError as exc:
        problems.extend(_problems(exc, "settings"))
    agent_models = []
    for i, entry in enumerate(agents or []):
        try:
            agent_models.append(AgentConfig.model_validate(entry))
        except ValidationError as exc:
            problems.extend(_problems(exc, f"agents.{i}"))
    if problems:
        raise ConfigError(problems)
    config = RoutingConfig(
        skills=parts.get("skills", {}),
        queues=parts.get("queues", {}),
        agents=agent_models,
        settings=parts.get("settings", Settings()),
    )
    problems = check_references(config)
    if problems:
        raise ConfigError(problems)
    return config


def load_yaml(path: str | Path) -> Any:
    """Read one YAML file; syntax errors become a ConfigError naming the file."""
    p = Path(path)
    try:
        return yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ConfigError([f"invalid YAML: {exc}"], source=str(p)) from exc
    except OSError as exc:
        raise ConfigError([f"cannot read: {exc.strerror}"], source=str(p)) from exc


def load_config_files(
    skills_path: str | Path, queues_path: str | Path, agents: list[dict[str, Any]] | None = None
) -> RoutingConfig:
    """Convenience for tests and the simulator: read skills.yaml and queues.yaml."""
    return build_config(load_yaml(skills_path), load_yaml(queues_path), agents)
