"""The shipped demo flows, run by the engine against a scripted caller."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.events import (
    BranchTaken,
    CallbackRequested,
    Event,
    FlowEntered,
    IvrCompleted,
    IvrInputCollected,
    PromptPlayed,
    VoicemailRecorded,
)
from callcenter.ivr.flows import load_flows
from callcenter.ivr.ports import CustomerInfo, OrderInfo, StaticLookups
from callcenter.ivr.runner import IvrEngine
from callcenter.ivr.services import load_services

from .scripted import Barge, HangUp, ScriptedPort, key, silence, speech

ROOT = Path(__file__).resolve().parents[2]
OPEN = datetime(2026, 3, 30, 10, 0, tzinfo=UTC)  # Monday 11:00 BST
CLOSED = datetime(2026, 3, 29, 10, 0, tzinfo=UTC)  # Sunday

VIP = CustomerInfo(id="c-1", name="Ada Lovelace", tier="vip", account="123456")
STANDARD = CustomerInfo(id="c-2", name="Bob Smith", tier="standard", account="222333")
LOOKUPS = StaticLookups(
    customers=[("+447700900001", VIP), ("+447700900002", STANDARD)],
    orders=[OrderInfo("ORD-1001", "shipped"), OrderInfo("ORD-1002", "being packed")],
    waits={"support": 600.0, "billing": 30.0},
)


@pytest.fixture(scope="module")
def flows():
    return load_flows(ROOT / "ivr_flows", ["billing", "support", "sales", "general"])


@pytest.fixture(scope="module")
def services():
    return load_services(ROOT / "config" / "services.yaml")


def engine(flows, services, events: list[Event], now: datetime, tmp_path: Path) -> IvrEngine:
    return IvrEngine(flows, services, emit=events.append, lookups=LOOKUPS, clock=lambda: now,
                     voicemail_dir=tmp_path / "vm")  # fmt: skip


def of(events: list[Event], kind: type[Event]) -> list:
    return [e for e in events if isinstance(e, kind)]


async def test_vip_caller_greeted_by_name_and_prioritised(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="+447700900001", dnis="5000", script=[key("3")])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k1")
    assert port.said()[0] == "Hello Ada Lovelace, thank you for calling."
    assert result.outcome == "queued"
    assert result.queue == "sales"
    assert result.priority == 10
    assert result.skills == {"sales": 1, "english": 1}
    assert result.path == ("identify", "check_tier", "raise_priority", "greet_known", "check_hours",
                           "departments", "sales")  # fmt: skip
    done = of(events, IvrCompleted)[-1]
    assert done.contact_id == "k1"
    assert done.data["customer_id"] == "c-1"
    assert done.data["priority"] == 10
    assert done.data["collected"] == {"department": "sales"}
    assert done.ts == OPEN.timestamp()


async def test_standard_caller_keeps_normal_priority(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="+447700900002", dnis="5000", script=[key("4")])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k2")
    assert port.said()[0] == "Hello Bob Smith, thank you for calling."
    assert (result.queue, result.priority) == ("general", 0)


async def test_unknown_dnis_runs_default_service(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="", dnis="7777", script=[speech("operator", 0.8)])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k3")
    assert of(events, FlowEntered)[0].flow == "main_menu"
    assert port.said()[0] == "Thank you for calling Example Company."
    assert result.queue == "general"
    assert result.variables["department"] == "operator"
    got = of(events, IvrInputCollected)[0]
    assert (got.how, got.value, got.confidence, got.name) == ("speech", "operator", 0.8, "department")


async def test_events_for_a_keyed_menu_choice(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="+447700900002", dnis="5000", script=[Barge(key("2")), key("2")])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k4")
    # key 2 interrupts the greeting, is kept as type-ahead, and picks "support";
    # support's wait (600 s) offers a callback menu where 2 = hold
    assert result.queue == "support"
    assert result.skills == {"technical": 1, "english": 1}
    kinds = [e.type for e in events]
    assert kinds[0] == "FlowEntered"
    assert kinds[-1] == "IvrCompleted"
    greet = of(events, PromptPlayed)[0]
    assert greet.step == "greet_known" and greet.interrupted is True
    first = of(events, IvrInputCollected)[0]
    assert (first.step, first.how, first.value, first.confidence) == ("departments", "dtmf", "2", 1.0)
    branches = [(b.step, b.target) for b in of(events, BranchTaken)]
    assert ("departments", "support") in branches
    assert ("support_wait", "offer_callback") in branches
    assert ("offer_callback", "to_support") in branches
    assert all(e.contact_id == "k4" for e in events)
    assert all(isinstance(e.as_dict()["type"], str) for e in events)


async def test_no_match_then_retry_then_match(flows, services, tmp_path) -> None:
    events: list[Event] = []
    script = [speech("", 0.2, text="banana"), silence(), speech("billing", 0.9)]
    port = ScriptedPort(ani="+447700900002", dnis="5000", script=script)
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k5")
    said = port.said()
    assert "Sorry, I did not understand." in said
    assert "Sorry, I did not hear anything." in said
    assert result.queue == "billing"
    # Bob is known by ANI with an account: the account question is skipped
    assert not any("account number" in s for s in said)
    # a no-match keeps what was heard apart from the value: the record must not read as a choice
    hows = [(i.how, i.value, i.matched, i.heard) for i in of(events, IvrInputCollected)]
    assert hows == [("speech", "", False, "banana"), ("none", "", False, ""), ("speech", "billing", True, "")]


async def test_account_collection_with_crm_lookup(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="", dnis="5000", script=[key("1"), key("123456#")])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k6")
    assert "Please enter your account number, followed by the hash key." in port.said()
    assert "Thank you, Ada Lovelace." in port.said()
    assert result.queue == "billing"
    assert result.variables["account"] == "123456"
    done = of(events, IvrCompleted)[-1]
    assert done.data["customer_id"] == "c-1"
    assert "account_lookup.find" in done.path
    assert [f.flow for f in of(events, FlowEntered)] == ["main_menu", "account_lookup"]


async def test_unknown_account_goes_on_without_customer(flows, services, tmp_path) -> None:
    port = ScriptedPort(ani="", dnis="5000", script=[key("1"), key("9999#")])
    result = await engine(flows, services, [], OPEN, tmp_path).run(port, contact_id="k7")
    assert "Sorry, I could not find that account. An agent will help you." in port.said()
    assert result.queue == "billing"


async def test_order_status_self_service(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="", dnis="5002", script=[key("1001#"), key("3")])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k8")
    assert "Order 1001 is shipped." in port.said()
    assert result.outcome == "self_served"
    assert port.hung_up
    assert of(events, IvrCompleted)[-1].outcome == "self_served"


async def test_order_not_found_then_agent(flows, services, tmp_path) -> None:
    port = ScriptedPort(ani="", dnis="5002", script=[key("4242#"), speech("agent")])
    result = await engine(flows, services, [], OPEN, tmp_path).run(port, contact_id="k9")
    assert "Sorry, I could not find order 4242." in port.said()
    assert result.queue == "general"


async def test_after_hours_voicemail(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="+447700900002", dnis="5000", script=[key("1")])
    result = await engine(flows, services, events, CLOSED, tmp_path).run(port, contact_id="k10")
    assert result.outcome == "voicemail"
    vm = of(events, VoicemailRecorded)
    assert len(vm) == 1
    assert Path(vm[0].path).exists() and vm[0].path.startswith(str(tmp_path / "vm"))
    assert vm[0].size == Path(vm[0].path).stat().st_size and len(vm[0].sha256) == 64
    assert vm[0].duration_s == pytest.approx(1.0)
    assert of(events, IvrCompleted)[-1].data["voicemail"] == vm[0].path
    assert port.said()[-1] == "Thank you, your message has been recorded. Goodbye."


async def test_after_hours_callback_uses_ani_on_hash(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="+447700900002", dnis="5000", script=[speech("callback"), key("#")])
    result = await engine(flows, services, events, CLOSED, tmp_path).run(port, contact_id="k11")
    assert result.outcome == "callback"
    assert result.callback_number == "+447700900002"
    assert [c.number for c in of(events, CallbackRequested)] == ["+447700900002"]
    assert result.queue == "general"


async def test_spanish_line_and_language_skill(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="", dnis="5001", script=[key("1"), key("3")])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k12")
    assert port.prompts[0][2] == "es"
    assert port.said()[1] == "Gracias por llamar a Example Company."
    assert result.queue == "sales"
    assert result.skills == {"sales": 1, "spanish": 1}
    assert of(events, FlowEntered)[0].language == "es"


async def test_spanish_line_caller_chooses_english(flows, services, tmp_path) -> None:
    port = ScriptedPort(ani="", dnis="5001", script=[speech("english"), key("4")])
    result = await engine(flows, services, [], OPEN, tmp_path).run(port, contact_id="k13")
    assert port.said()[1] == "Thank you for calling Example Company."
    assert result.skills == {"english": 1}


async def test_spanish_line_after_hours_runs_after_hours_flow(flows, services, tmp_path) -> None:
    events: list[Event] = []
    sunday = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    port = ScriptedPort(ani="+34600000000", dnis="5001", script=[key("2"), key("600111222#")])
    result = await engine(flows, services, events, sunday, tmp_path).run(port, contact_id="k14")
    assert of(events, FlowEntered)[0].flow == "after_hours"
    assert port.said()[0].startswith("Nuestras oficinas están cerradas")
    assert result.outcome == "callback"
    assert result.callback_number == "600111222"


async def test_caller_hangs_up_in_menu(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="", dnis="5000", script=[HangUp()])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k15")
    assert result.outcome == "hangup"
    done = of(events, IvrCompleted)
    assert len(done) == 1 and done[0].data["ended_by"] == "caller"


async def test_menu_retries_exhausted_goes_to_operator(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="", dnis="5000", script=[silence(), key("5"), silence()])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k16")
    assert result.queue == "general"
    last = [b for b in of(events, BranchTaken) if b.step == "departments"][-1]
    assert (last.target, last.reason) == ("operator", "retries exhausted")


async def test_low_confidence_speech_is_no_match(flows, services, tmp_path) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani="", dnis="5000", script=[speech("sales", 0.1), key("4")])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k17")
    assert "Sorry, I did not understand." in port.said()
    assert result.queue == "general"  # not sales: 0.1 is below the menu's min_confidence 0.3
    first = of(events, IvrInputCollected)[0]
    assert (first.how, first.value, first.confidence) == ("speech", "", 0.1)
    assert (first.matched, first.heard) == (False, "sales")  # heard, but not taken as the choice


def test_engine_refuses_missing_service_flow(services) -> None:
    from callcenter.ivr.flows import FlowSet

    with pytest.raises(ValueError, match="main_menu"):
        IvrEngine(FlowSet(), services, emit=lambda e: None)


async def test_hangup_after_voicemail_keeps_the_message(flows, services, tmp_path) -> None:
    events: list[Event] = []
    # the caller records, then hangs up before the goodbye prompt
    port = ScriptedPort(ani="+447700900002", dnis="5000", script=[key("1")],
                        hang_up_after_record=True)  # fmt: skip
    result = await engine(flows, services, events, CLOSED, tmp_path).run(port, contact_id="k18")
    assert result.outcome == "voicemail"
    assert result.voicemail is not None and Path(result.voicemail.path).exists()
    done = of(events, IvrCompleted)[-1]
    assert (done.outcome, done.data["ended_by"]) == ("voicemail", "caller")
    assert len(of(events, VoicemailRecorded)) == 1


async def test_echo_dnis_is_left_to_the_builtin_app(flows, services, tmp_path) -> None:
    events: list[Event] = []
    eng = engine(flows, services, events, OPEN, tmp_path)
    port = ScriptedPort(ani="", dnis="600")
    assert eng.is_builtin("600") and not eng.is_builtin("5000")
    result = await eng.run(port, contact_id="k19")
    assert (result.outcome, result.variables) == ("app", {"app": "echo"})
    assert port.prompts == [] and not port.hung_up
    assert [e.type for e in events] == ["FlowEntered", "IvrCompleted"]


async def test_prerender_renders_static_prompts_per_language(flows, services, tmp_path) -> None:
    class Recorder:
        def __init__(self) -> None:
            self.calls: list[tuple[str, str]] = []

        async def render(self, text: str, *, language: str = "en") -> Path:
            self.calls.append((text, language))
            return tmp_path / "x.wav"

    tts = Recorder()
    n = await engine(flows, services, [], OPEN, tmp_path).prerender(tts)
    assert n == len(tts.calls) > 20
    assert ("Thank you for calling Example Company.", "en") in tts.calls
    assert ("Gracias por llamar a Example Company.", "es") in tts.calls
    assert not any("{" in t for t, _ in tts.calls)  # dynamic prompts render on demand


@pytest.mark.parametrize("ani", ["anonymous", "Unknown", "", "  "])
async def test_withheld_ani_is_anonymous(flows, services, tmp_path, ani: str) -> None:
    events: list[Event] = []
    port = ScriptedPort(ani=ani, dnis="5000", script=[key("4")])
    result = await engine(flows, services, events, OPEN, tmp_path).run(port, contact_id="k20")
    assert port.said()[0] == "Thank you for calling Example Company."
    done = of(events, IvrCompleted)[-1]
    assert done.data["ani"] == "" and done.data["customer_id"] is None
    assert result.queue == "general"
