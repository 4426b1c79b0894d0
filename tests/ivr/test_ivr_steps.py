"""Every step kind, on small flows written for the test, with a scripted caller."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from callcenter.events import BranchTaken, Event, IvrCompleted, IvrInputCollected, PromptPlayed
from callcenter.ivr.flows import FlowLoadError, load_flows
from callcenter.ivr.ports import CustomerInfo, OrderInfo, StaticLookups
from callcenter.ivr.runner import IvrEngine
from callcenter.ivr.services import ServicesConfig
from callcenter.ivr.stepper import CollectAction, Done, FlowStepper, PromptAction

from .scripted import Barge, ScriptedPort, key, silence, speech

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def services(flow: str = "t", **extra) -> ServicesConfig:
    svc = {"flow": flow, "dnis": ["1"], "timezone": "Europe/London",
           "languages": {"default": "en", "offered": ["en", "es"]}, **extra}  # fmt: skip
    return ServicesConfig.model_validate({"default_service": "s", "services": {"s": svc}})


def flows_from(tmp_path: Path, **files: str):
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip("\n"))
    return load_flows(tmp_path)


class Lookups(StaticLookups):
    async def queue_estimated_wait(self, queue: str) -> float | None:
        if queue == "broken":
            raise ConnectionError("routing is down")
        return await super().queue_estimated_wait(queue)


LOOKUPS = Lookups(
    customers=[("+15550001", CustomerInfo(id="c9", name="Eve", tier="gold", language="es"))],
    orders=[OrderInfo("ORD-7", "delivered")],
    waits={"q": 42.0},
)


async def run(tmp_path: Path, flow_text: str, script, ani: str = "", svc=None, **more):
    fs = flows_from(tmp_path, t=flow_text, **more)
    events: list[Event] = []
    eng = IvrEngine(fs, svc or services(), emit=events.append, lookups=LOOKUPS, clock=lambda: NOW,
                    voicemail_dir=tmp_path / "vm")  # fmt: skip
    port = ScriptedPort(ani=ani, dnis="1", script=list(script))
    result = await eng.run(port, contact_id="c")
    return result, port, events


async def test_say_with_variables_and_set(tmp_path) -> None:
    result, port, events = await run(tmp_path, """
        steps:
          s1: {set: {who: "world", n: 3}}
          s2: {say: "Hello {who}, {n} times, from {service} on {dnis}."}
          s3: {hangup: "Bye {who}."}
        """, [])  # fmt: skip
    assert port.said() == ["Hello world, 3 times, from s on 1.", "Bye world."]
    assert result.outcome == "hangup"
    assert result.variables["who"] == "world"
    assert port.hung_up
    played = [e for e in events if isinstance(e, PromptPlayed)]
    assert [(p.step, p.interrupted) for p in played] == [("s2", False), ("s3", False)]


async def test_play_audio_relative_to_flows_dir(tmp_path) -> None:
    result, port, _ = await run(tmp_path, """
        steps:
          p: {play: "audio/{name}.wav"}
          bad: {play: "../../etc/passwd"}
        """, [])  # fmt: skip
    assert [a for _, a, _ in port.prompts] == [str(tmp_path / "audio" / ".wav")]
    assert result.outcome == "hangup"


async def test_gather_digits_with_barge_in_typeahead(tmp_path) -> None:
    flow = """
        steps:
          g:
            gather:
              name: pin
              prompt: "Enter your PIN then hash."
              digits: {min: 4, max: 6, terminator: "#"}
          done: {hangup: "PIN {pin}."}
        """
    # the caller types 12 during the prompt, then 34# after it stops
    result, port, events = await run(tmp_path, flow, [Barge(key("12")), key("34#")])
    assert result.variables["pin"] == "1234"
    assert port.said()[-1] == "PIN 1234."
    got = [e for e in events if isinstance(e, IvrInputCollected)]
    assert [(g.name, g.value, g.how) for g in got] == [("pin", "1234", "dtmf")]


async def test_gather_too_short_then_on_fail(tmp_path) -> None:
    flow = """
        steps:
          g:
            gather:
              name: pin
              prompt: "PIN?"
              invalid: "Too short."
              no_input: "Nothing?"
              digits: {min: 4, max: 6}
              retries: 2
              on_fail: failed
          ok: {hangup: true}
          failed: {queue: {name: general}}
        """
    result, port, events = await run(tmp_path, flow, [key("12#"), silence()])
    assert port.said() == ["PIN?", "Too short.", "PIN?"]
    assert result.queue == "general"
    assert result.variables["pin"] == ""
    assert [b.reason for b in events if isinstance(b, BranchTaken)] == ["retries exhausted"]


async def test_gather_speech(tmp_path) -> None:
    flow = """
        steps:
          g:
            gather: {name: colour, prompt: "Say a colour.", phrases: [red, green], min_confidence: 0.5}
          b:
            branch:
              - {if: "colour == 'green'", goto: go}
          stop: {hangup: "stop"}
          go: {hangup: "go"}
        """
    _result, port, events = await run(tmp_path, flow, [speech("green", 0.7)])
    assert port.said()[-1] == "go"
    got = next(e for e in events if isinstance(e, IvrInputCollected))
    assert (got.how, got.value, got.confidence) == ("speech", "green", 0.7)
    branch = next(e for e in events if isinstance(e, BranchTaken))
    assert (branch.step, branch.target, branch.reason) == ("b", "go", "colour == 'green'")


async def test_lookup_customer_by_ani_sets_language(tmp_path) -> None:
    flow = """
        steps:
          who: {lookup: {what: customer_by_ani, not_found: anon}}
          hi: {say: {en: "Hi {customer.name}", es: "Hola {customer.name}"}}
          q: {queue: {name: general, priority: "priority + (10 if false else 0)"}}
          anon: {hangup: true}
        """
    with pytest.raises(FlowLoadError, match="not allowed"):  # no conditional expressions
        await run(tmp_path, flow, [], ani="+15550001")
    flow = flow.replace("priority + (10 if false else 0)", "priority + 3")
    result, port, _ = await run(tmp_path, flow, [], ani="+15550001")  # rewrites t.yaml
    assert port.said() == ["Hola Eve"]  # the CRM says Eve speaks Spanish, which is offered
    assert (result.priority, result.skills) == (3, {"spanish": 1})


async def test_lookup_order_and_queue_wait_and_failure(tmp_path) -> None:
    flow = """
        steps:
          o: {lookup: {what: order_status, key: "ORD-{n}", found: found}}
          nf: {say: "no order"}
          found: {say: "order {order.id} {order.status}"}
          w: {lookup: {what: queue_wait, queue: q}}
          w2: {lookup: {what: queue_wait, queue: broken, into: w_broken, not_found: end}}
          never: {say: "unreachable in practice"}
          end: {hangup: "wait {wait} broken {w_broken}"}
        """
    fs_text = flow
    result, port, events = await run(tmp_path, "steps:\n  s: {set: {n: '7'}}\n  c: {call: sub}\n",
                                     [], sub=fs_text)  # fmt: skip
    assert port.said() == ["order ORD-7 delivered", "wait 42.0 broken "]
    reasons = [b.reason for b in events if isinstance(b, BranchTaken)]
    assert reasons == ["order_status found", "queue_wait not found"]
    assert result.path[:3] == ("s", "c", "sub.o")


async def test_transfer_success_and_failure(tmp_path) -> None:
    flow = """
        steps:
          t: {transfer: {uri: "sip:desk@127.0.0.1", on_failure: sorry}}
          sorry: {hangup: "Transfer failed."}
        """
    result, port, _ = await run(tmp_path, flow, [])
    assert (result.outcome, result.transfer_uri, port.transfers) == (
        "transferred", "sip:desk@127.0.0.1", ["sip:desk@127.0.0.1"])  # fmt: skip
    fs = load_flows(tmp_path)
    events: list[Event] = []
    eng = IvrEngine(fs, services(), emit=events.append, clock=lambda: NOW)
    port = ScriptedPort(ani="", dnis="1", transfer_ok=False)
    result = await eng.run(port, contact_id="c")
    assert result.outcome == "hangup"
    assert port.said() == ["Transfer failed."]


async def test_goto_loop_is_stopped_logged_and_a_system_failure(tmp_path, caplog) -> None:
    """A loop the load-time check cannot see (a branch that always holds) meets the step limit."""
    flow = """
        steps:
          a: {set: {n: 1}}
          b:
            branch:
              - {if: "n == 1", goto: a}
          c: {hangup: true}
        """
    result, port, events = await run(tmp_path, flow, [])
    assert result.outcome == "hangup"
    assert port.hung_up
    done = next(e for e in events if isinstance(e, IvrCompleted))
    assert "step limit" in done.data["error"]
    assert done.data["ended_by"] == "system"  # the CRM records a failure, not an abandon
    assert any("ending the call" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


async def test_sub_flow_nesting_guard_logs_and_ends_as_system(tmp_path, caplog) -> None:
    """Nine flows calling the next (no recursion, so loading accepts them): the depth guard ends it."""
    subs = {f"s{i}": f"steps:\n  x: {{call: s{i + 1}}}\n" for i in range(9)}
    subs["s9"] = "steps:\n  x: {hangup: true}\n"
    result, _port, events = await run(tmp_path, "steps:\n  a: {call: s0}\n", [], **subs)
    done = next(e for e in events if isinstance(e, IvrCompleted))
    assert (result.outcome, done.data["ended_by"]) == ("hangup", "system")
    assert "nesting too deep" in done.data["error"]
    assert any("nested" in r.getMessage() for r in caplog.records if r.levelname == "ERROR")


async def test_call_and_return(tmp_path) -> None:
    main = "steps:\n  a: {call: sub}\n  b: {hangup: 'back in main'}\n"
    sub = "steps:\n  x: {say: 'in sub'}\n  r: {return: true}\n  y: {say: never}\n"
    result, port, _ = await run(tmp_path, main, [], sub=sub)
    assert port.said() == ["in sub", "back in main"]
    assert result.path == ("a", "sub.x", "sub.r", "b")


async def test_menu_option_without_goto_falls_through_and_sets(tmp_path) -> None:
    flow = """
        steps:
          m:
            menu:
              prompt: "1 or 2"
              options:
                - {key: "1", set: {picked: one}}
                - {key: "2", goto: two}
          one: {hangup: "{picked} {m}"}
          two: {hangup: "two"}
        """
    _, port, _ = await run(tmp_path, flow, [key("1")])
    assert port.said()[-1] == "one 1"


async def test_menu_without_barge_in_ignores_early_keys(tmp_path) -> None:
    flow = """
        steps:
          m:
            menu:
              prompt: "1 or 2"
              options: [{key: "1", goto: a}, {key: "2", goto: b}]
            barge_in: false
          a: {hangup: "a"}
          b: {hangup: "b"}
        """
    # a Barge is only taken when the prompt allows barge-in; here it waits for collect
    _, port, _ = await run(tmp_path, flow, [Barge(key("2"))])
    assert port.said()[-1] == "b"
    assert port.collects, "the key was taken by collect, after the prompt"


async def test_after_hours_hangup_action(tmp_path) -> None:
    svc = services(hours={"mon": ["09:00-10:00"]},
                   after_hours={"action": "hangup", "message": "We are closed."})  # fmt: skip
    result, port, _ = await run(tmp_path, "steps:\n  a: {say: open}\n", [], svc=svc)
    assert port.said() == ["We are closed."]
    assert result.outcome == "hangup"


def test_stepper_is_pure_and_steps_without_io(tmp_path) -> None:
    fs = flows_from(tmp_path, t="""
        steps:
          m:
            menu:
              prompt: "Pick"
              options: [{key: "1", phrases: [yes], goto: q}]
          q: {queue: {name: general}}
        """)  # fmt: skip
    events: list[Event] = []
    st = FlowStepper(fs, services().services["s"], contact_id="c", ani="", dnis="1",
                     clock=lambda: NOW, emit=events.append)  # fmt: skip
    a = st.start()
    assert isinstance(a, PromptAction) and a.text == "Pick" and a.barge_in is not None
    assert a.barge_in.phrases == ("yes",)
    a = st.send(None)
    assert isinstance(a, CollectAction)
    a = st.send(speech("yes", 0.95))
    assert isinstance(a, Done)
    assert a.result.queue == "general"
    assert [e.type for e in events] == ["FlowEntered", "PromptPlayed", "IvrInputCollected",
                                        "BranchTaken", "IvrCompleted"]  # fmt: skip
