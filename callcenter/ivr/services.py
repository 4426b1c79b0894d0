"""Services: what a dialled number (DNIS) means.

``config/services.yaml`` maps DNIS to a Service — the flow to run, the
languages offered, the time zone, business hours and holidays, the default
queue and what to do after hours. An unknown DNIS resolves to the configured
default service, never to an error: a caller who dialled a number we forgot
to configure still reaches the main menu.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from callcenter.configerrors import ConfigError
from callcenter.ivr.yamllines import LinedDoc, YamlSyntaxError, load_with_lines

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpenRange(_Strict):
    """One opening period in local time; ``end`` may be 24:00 (end of day)."""

    start: time
    end_minutes: int  # minutes after local midnight, 1..1440

    @classmethod
    def parse(cls, text: str) -> OpenRange:
        m = _RANGE.match(text)
        if not m:
            raise ValueError(f"expected 'HH:MM-HH:MM', got {text!r}")
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2):
            raise ValueError(f"not a time of day in {text!r}")
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if end <= start:
            # overnight opening is two ranges on two days; saying so beats guessing
            raise ValueError(f"range {text!r} must end after it starts (split overnight hours)")
        return cls(start=time(h1, m1), end_minutes=end)

    def contains(self, local: datetime) -> bool:
        minute = local.hour * 60 + local.minute
        return self.start.hour * 60 + self.start.minute <= minute < self.end_minutes


def _check_range(text: str) -> str:
    OpenRange.parse(text)
    return text


Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
HoursRange = Annotated[str, AfterValidator(_check_range)]


class Languages(_Strict):
    default: str = "en"
    offered: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _default_offered(self) -> Languages:
        if not self.offered:
            object.__setattr__(self, "offered", (self.default,))
        elif self.default not in self.offered:
            raise ValueError(f"default language {self.default!r} is not in offered {self.offered}")
        return self


class AfterHours(_Strict):
    """What happens when a call arrives outside business hours.

    ``continue``: run the service flow anyway; it sees ``open == false`` and
    decides (e.g. the main menu offers voicemail). ``flow``: run ``flow``
    instead. ``hangup``: say ``message`` and hang up.
    """

    action: Literal["continue", "flow", "hangup"] = "continue"
    flow: str | None = None
    message: str | dict[str, str] | None = None

    @model_validator(mode="after")
    def _needs(self) -> AfterHours:
        if self.action == "flow" and not self.flow:
            raise ValueError("after_hours action 'flow' needs a 'flow'")
        return self


class Service(_Strict):
    name: str
    dnis: tuple[str, ...] = ()
    flow: str
    languages: Languages = Languages()
    timezone: str = "UTC"
    hours: dict[Weekday, tuple[HoursRange, ...]] | None = None  # None = always open
    holidays: tuple[date, ...] = ()
    default_queue: str = "general"
    after_hours: AfterHours = AfterHours()

    @field_validator("dnis", mode="before")
    @classmethod
    def _dnis_text(cls, v: object) -> object:
        # YAML reads 5000 as an int; a DNIS is a string of digits
        if isinstance(v, list | tuple):
            return tuple(str(x) for x in v)
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_open(self, now: datetime) -> bool:
        """Open at the aware instant ``now``, judged in the service's local time."""
        if now.tzinfo is None:
            raise ValueError("is_open needs an aware datetime (naive times are ambiguous)")
        if self.hours is None:
            local = now.astimezone(self.zone)
            return local.date() not in self.holidays
        local = now.astimezone(self.zone)
        if local.date() in self.holidays:
            return False
        ranges = self.hours.get(WEEKDAYS[local.weekday()], ())
        return any(OpenRange.parse(r).contains(local) for r in ranges)


class ServicesConfig(_Strict):
    default_service: str
    language_skills: dict[str, str] = Field(default_factory=lambda: {"en": "english", "es": "spanish"})
    services: dict[str, Service]

    @model_validator(mode="before")
    @classmethod
    def _names(cls, data: object) -> object:
        # the mapping key is the service name; copy it in so Service is self-contained
        if isinstance(data, dict) and isinstance(data.get("services"), dict):
            services = {}
            for name, body in data["services"].items():
                services[name] = {"name": str(name), **body} if isinstance(body, dict) else body
            data = {**data, "services": services}
        return data

    @model_validator(mode="after")
    def _cross(self) -> ServicesConfig:
        if self.default_service not in self.services:
            raise ValueError(f"default_service {self.default_service!r} is not a defined service")
        seen: dict[str, str] = {}
        for svc in self.services.values():
            for d in svc.dnis:
                key = normalize_dnis(d)
                if key in seen:
                    raise ValueError(f"DNIS {d!r} is used by both {seen[key]!r} and {svc.name!r}")
                seen[key] = svc.name
        return self

    def resolve(self, dnis: str | None) -> Service:
        """The service for a dialled number; unknown or missing → the default."""
        key = normalize_dnis(dnis or "")
        for svc in self.services.values():
            if any(normalize_dnis(d) == key for d in svc.dnis):
                return svc
        return self.services[self.default_service]

    def language_skill(self, language: str) -> str | None:
        return self.language_skills.get(language)

    def flow_names(self) -> set[str]:
        names = {s.flow for s in self.services.values()}
        names |= {s.after_hours.flow for s in self.services.values() if s.after_hours.flow}
        return names


def normalize_dnis(dnis: str) -> str:
    """Compare numbers by their digits (and a leading +): '5000', 'tel:5000', ' 5000 '."""
    text = dnis.strip()
    if text.lower().startswith(("tel:", "sip:")):
        text = text[4:].split("@", 1)[0]
    plus = text.startswith("+")
    digits = re.sub(r"[^0-9*#]", "", text)
    return ("+" if plus else "") + digits


def load_services(path: Path | str) -> ServicesConfig:
    """Load and validate services.yaml, or raise ConfigError naming file:line, key, reason."""
    file = str(path)
    try:
        doc = load_with_lines(path)
    except YamlSyntaxError as exc:
        raise ConfigError([(f"{exc.file}:{exc.line}", "", exc.reason)]) from None
    return parse_services(doc, file)


def parse_services(doc: LinedDoc, file: str) -> ServicesConfig:
    try:
        return ServicesConfig.model_validate(doc.data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            key = ".".join(str(p) for p in loc)
            msg = err["msg"].removeprefix("Value error, ")
            problems.append((f"{file}:{doc.line_for(loc)}", key, msg))
        raise ConfigError(problems) from None
