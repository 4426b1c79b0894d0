"""``config/webchat.yaml``: the web channel's topics, forms, FAQ, canned responses and limits.

Validated by pydantic like the other files; a bad file refuses the start naming the file,
the key and the reason (callcenter/configerrors.py). Topics and forms name queues and
services, which :func:`check_references` cross-checks against routing and services.yaml.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from callcenter.configerrors import ConfigError

_ID = r"^[a-z0-9_][a-z0-9_-]{0,39}$"
_ORIGIN = re.compile(r"^https?://[^/\s]+$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Topic(_Strict):
    """What the customer picks on the pre-chat form, and where it routes."""

    label: str = Field(min_length=1, max_length=80)
    queue: str
    service: str | None = None  # services.yaml entry whose hours apply; None = webchat.service
    skills: dict[str, int] = Field(default_factory=dict)  # extra required skills (1-10)
    priority: int = Field(0, ge=0, le=100)


class FormField(_Strict):
    kind: Literal["text", "email", "phone"] = "text"
    required: bool = False
    max_length: int = Field(500, ge=1, le=100_000)


class Form(_Strict):
    """A web form: ``POST /api/web/forms/{name}`` makes one interaction in ``queue``."""

    fields: dict[str, FormField] = Field(min_length=1)
    queue: str
    service: str | None = None
    priority: int = Field(0, ge=0, le=100)

    @field_validator("fields")
    @classmethod
    def _names(cls, v: dict[str, FormField]) -> dict[str, FormField]:
        bad = [k for k in v if not re.match(_ID, k)]
        if bad:
            raise ValueError(f"field names must match {_ID}: {bad}")
        return v


class FaqEntry(_Strict):
    id: str = Field(pattern=_ID)
    question: str = Field(min_length=1, max_length=200)
    answer: str = Field(min_length=1, max_length=4000)
    keywords: list[str] = Field(default_factory=list)  # words that pick this entry from free text


class Canned(_Strict):
    id: str = Field(pattern=_ID)
    title: str = Field(min_length=1, max_length=80)
    text: str = Field(min_length=1, max_length=2000)


class Limits(_Strict):
    message_chars: int = Field(2000, ge=1, le=60_000)  # one chat line; longer ones are refused
    messages_per_session: int = Field(20, ge=1)  # per minute, one chat
    messages_per_ip: int = Field(120, ge=1)  # per minute, all chats from one address
    sessions_per_ip: int = Field(20, ge=1)  # new chats per minute from one address
    forms_per_ip: int = Field(10, ge=1)  # form posts per minute from one address
    idle_timeout_s: float = Field(900, gt=0)  # no line from either side: the chat ends
    resume_grace_s: float = Field(120, gt=0)  # a dropped customer socket may come back this long
    max_sessions: int = Field(20_000, ge=1)  # open chat sessions in this process


class WebChatConfig(_Strict):
    enabled: bool = True
    service: str = "main"  # whose business hours the widget follows, unless a topic says otherwise
    # Sites allowed to open the customer WebSocket and post forms from a browser (the
    # server's own pages always are): scheme://host[:port], no path.
    allowed_origins: list[str] = Field(default_factory=list)
    topics: dict[str, Topic] = Field(min_length=1)
    offline_queue: str | None = None  # the message form's queue; None = the topic's queue
    forms: dict[str, Form] = Field(default_factory=dict)
    faq: list[FaqEntry] = Field(default_factory=list)
    canned: list[Canned] = Field(default_factory=list)
    limits: Limits = Limits()
    transcript_from: str = "support@example.com"  # sender of the transcript email

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, v: list[str]) -> list[str]:
        bad = [o for o in v if not _ORIGIN.match(o)]
        if bad:
            raise ValueError(f"an origin is scheme://host[:port] with no path: {bad}")
        return [o.lower() for o in v]

    @field_validator("topics", "forms")
    @classmethod
    def _ids(cls, v: dict[str, Any]) -> dict[str, Any]:
        bad = [k for k in v if not re.match(_ID, str(k))]
        if bad:
            raise ValueError(f"names must match {_ID}: {bad}")
        return v

    @model_validator(mode="after")
    def _unique(self) -> WebChatConfig:
        for what, items in (("faq", self.faq), ("canned", self.canned)):
            ids = [i.id for i in items]
            dup = sorted({i for i in ids if ids.count(i) > 1})
            if dup:
                raise ValueError(f"duplicate {what} id(s) {dup}")
        return self


def check_references(cfg: WebChatConfig, file: Path, queues: set[str], services: set[str],
                     skills: set[str]) -> None:  # fmt: skip
    """Every queue, service and skill named here exists (else ConfigError naming the key)."""
    problems: list[tuple[str, str, str]] = []

    def want(ok: bool, key: str, why: str) -> None:
        if not ok:
            problems.append((str(file), key, why))

    want(cfg.service in services, "service", f"unknown service {cfg.service!r}")
    if cfg.offline_queue is not None:
        want(cfg.offline_queue in queues, "offline_queue", f"unknown queue {cfg.offline_queue!r}")
    for name, t in cfg.topics.items():
        want(t.queue in queues, f"topics.{name}.queue", f"unknown queue {t.queue!r}")
        want(t.service is None or t.service in services, f"topics.{name}.service",
             f"unknown service {t.service!r}")
        for skill, level in t.skills.items():
            want(skill in skills, f"topics.{name}.skills.{skill}", "unknown skill")
            want(1 <= level <= 10, f"topics.{name}.skills.{skill}", "level must be 1-10")
    for name, f in cfg.forms.items():
        want(f.queue in queues, f"forms.{name}.queue", f"unknown queue {f.queue!r}")
        want(f.service is None or f.service in services, f"forms.{name}.service",
             f"unknown service {f.service!r}")
    if problems:
        raise ConfigError(problems)
