"""The contact's phase machine: every listed transition works with its event, every other
one raises, the change is logged and published, ContactEnded goes out once, and the
domain package stays free of the web and SIP layers."""

from __future__ import annotations

import ast
import dataclasses
import logging
from pathlib import Path
from typing import Any

import pytest

from callcenter import events as ev
from callcenter.bus import EventBus
from callcenter.contacts.contact import TRANSITIONS, Contact, Phase
from callcenter.contacts.core import ContactCore
from callcenter.contacts.errors import IllegalTransition, InvalidState
from routing import Router, build_config
from tests.contacts.fake_channel import FakeChannel

ROOT = Path(__file__).resolve().parents[2]


def contact_in(phase: Phase) -> Contact:
    contact = Contact("c1", "voice", "+441632960001", "5000", "main")
    contact._phase = phase  # a fixture's shortcut to the phase under test
    return contact


def sample(event_type: type[ev.Event] | None) -> ev.Event | None:
    """An instance of ``event_type`` with placeholder values in its required fields."""
    if event_type is None:
        return None
    values: dict[str, Any] = {}
    for f in dataclasses.fields(event_type):
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            values[f.name] = {"str": "x", "int": 1, "float": 1.0, "bool": True}.get(str(f.type), "x")
    return event_type(contact_id="c1", **values)


def empty_router() -> Router:
    return Router(build_config({"skills": {}}, {"queues": {"q": {}}}, []))


class Published(list[ev.Event]):
    def __call__(self, event: ev.Event) -> None:
        self.append(event)


async def core_with_log() -> tuple[ContactCore, Published]:
    bus = EventBus()
    published = Published()
    bus.subscribe_inline("test", published)
    core = ContactCore(router=empty_router(), bus=bus, crm=None)
    core.add_channel("voice", FakeChannel())
    return core, published


@pytest.mark.parametrize(("old", "new"), sorted(TRANSITIONS), ids=lambda p: str(p))
async def test_every_listed_transition_publishes_its_event(old: Phase, new: Phase) -> None:
    core, published = await core_with_log()
    contact = contact_in(old)
    event = sample(TRANSITIONS[(old, new)])
    core.move(contact, new, event)
    assert contact.phase is new
    assert published == ([event] if event is not None else [])


ILLEGAL = [(a, b) for a in Phase for b in Phase if (a, b) not in TRANSITIONS]


@pytest.mark.parametrize(("old", "new"), ILLEGAL, ids=lambda p: str(p))
async def test_every_other_transition_raises_and_changes_nothing(old: Phase, new: Phase) -> None:
    core, published = await core_with_log()
    contact = contact_in(old)
    with pytest.raises(IllegalTransition):
        core.move(contact, new, sample(ev.ContactEnded))
    with pytest.raises(IllegalTransition):
        core.move(contact, new, None)
    assert contact.phase is old
    assert published == []


async def test_a_transition_with_the_wrong_event_raises() -> None:
    core, published = await core_with_log()
    contact = contact_in(Phase.QUEUED)
    with pytest.raises(IllegalTransition, match="AgentOffered"):
        core.move(contact, Phase.OFFERED, sample(ev.ContactQueued))
    with pytest.raises(IllegalTransition):
        core.move(contact, Phase.OFFERED, None)
    with pytest.raises(IllegalTransition):
        core.move(contact_in(Phase.ARRIVED), Phase.SELF_SERVICE, sample(ev.FlowEntered))
    assert contact.phase is Phase.QUEUED and published == []


def test_an_illegal_transition_is_an_invalid_state_for_callers() -> None:
    assert issubclass(IllegalTransition, InvalidState)


async def test_a_change_is_logged_with_the_contact_id(caplog: pytest.LogCaptureFixture) -> None:
    core, _ = await core_with_log()
    contact = contact_in(Phase.ARRIVED)
    with caplog.at_level(logging.DEBUG, logger="callcenter.contacts.core"):
        core.move(contact, Phase.SELF_SERVICE)
    assert [r.getMessage() for r in caplog.records] == ["contact c1: arrived → self_service"]


async def test_ended_is_terminal_and_contact_ended_goes_out_once() -> None:
    core, published = await core_with_log()
    contact = contact_in(Phase.EXTERNAL)
    core.contacts[contact.contact_id] = contact
    core.end(contact, "remote_bye", "caller")
    core.end(contact, "bridged_leg_ended", "system")  # the other leg reports the same end
    assert [type(e) for e in published] == [ev.ContactEnded]
    assert published[0].reason == "remote_bye"
    assert contact.phase is Phase.ENDED and contact.contact_id not in core.contacts
    assert not [new for (old, new) in TRANSITIONS if old is Phase.ENDED]


def test_every_phase_is_reachable_and_every_path_ends() -> None:
    reachable, frontier = {Phase.ARRIVED}, [Phase.ARRIVED]
    while frontier:
        here = frontier.pop()
        for old, new in TRANSITIONS:
            if old is here and new not in reachable:
                reachable.add(new)
                frontier.append(new)
    assert reachable == set(Phase)
    # ENDED, or HANDED_OFF: another node carries the contact on and ends it there
    ends = {Phase.ENDED, Phase.HANDED_OFF}
    assert not [new for (old, new) in TRANSITIONS if old is Phase.HANDED_OFF]
    changed = True
    while changed:
        changed = False
        for old, new in TRANSITIONS:
            if new in ends and old not in ends:
                ends.add(old)
                changed = True
    assert ends == set(Phase)


def test_contact_ended_is_published_on_every_way_into_ended_or_wrap_up() -> None:
    into_end = {k: v for k, v in TRANSITIONS.items() if k[1] in (Phase.ENDED, Phase.WRAP_UP)}
    for (old, new), event in into_end.items():
        expected = ev.WrapUpCompleted if old is Phase.WRAP_UP else ev.ContactEnded
        assert event is expected, (old, new)


def imported_modules(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def test_the_contact_core_imports_no_web_sip_or_media_code() -> None:
    files = sorted((ROOT / "callcenter" / "contacts").glob("*.py"))
    assert len(files) >= 4
    forbidden = ("callcenter.web", "callcenter.sip", "callcenter.media", "callcenter.channels")
    wrong = {p.name: sorted(m for m in imported_modules(p) if m.startswith(forbidden)) for p in files}
    assert {k: v for k, v in wrong.items() if v} == {}
