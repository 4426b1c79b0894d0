"""Flow files are validated on load: bad ones are refused with file, line and reason."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from callcenter.ivr.check import check_flows
from callcenter.ivr.flows import FlowLoadError, collect_flows, load_flows
from callcenter.ivr.services import load_services

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ["billing", "support", "sales", "general", "backoffice"]  # config/queues.yaml


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(textwrap.dedent(text).lstrip("\n"))
    return p


def refused(tmp_path: Path, text: str, queues: list[str] | None = None) -> list[str]:
    write(tmp_path, "bad.yaml", text)
    with pytest.raises(FlowLoadError) as exc:
        load_flows(tmp_path, queues)
    return [str(i) for i in exc.value.issues]


def test_demo_flows_load_clean() -> None:
    fs, issues = collect_flows(ROOT / "ivr_flows", QUEUES)
    assert issues == []
    assert fs.warnings == []
    assert {"main_menu", "account_lookup", "order_status", "after_hours", "language_choice"} <= set(fs.flows)


def test_check_flows_on_demo_config_is_empty() -> None:
    services = load_services(ROOT / "config" / "services.yaml")
    assert check_flows(ROOT / "ivr_flows", services, QUEUES, include_warnings=True) == []


def test_unknown_key_in_step_names_file_and_line(tmp_path: Path) -> None:
    issues = refused(
        tmp_path,
        """
        name: bad
        steps:
          hello:
            say: "Hello"
          ask:
            menu:
              prompt: "Press 1"
              options:
                - {key: "1", goto: hello}
              retrys: 3
        """,
    )
    assert len(issues) == 1
    assert issues[0].startswith(f"{tmp_path / 'bad.yaml'}:10: steps.ask.menu.retrys")
    assert "Extra inputs are not permitted" in issues[0]


def test_missing_goto_target(tmp_path: Path) -> None:
    issues = refused(
        tmp_path,
        """
        steps:
          start:
            say: hi
          check:
            branch:
              - if: "open"
                goto: nowhere
        """,
    )
    assert issues == [f"{tmp_path / 'bad.yaml'}:4: steps.check: goto target 'nowhere' does not exist "
                      "in flow 'bad'"]  # fmt: skip


def test_unsafe_expression_refused_at_load(tmp_path: Path) -> None:
    issues = refused(
        tmp_path,
        """
        steps:
          check:
            branch:
              - if: "__import__('os').system('true')"
                goto: check
        """,
    )
    assert len(issues) == 1
    assert ":4: steps.check.branch.0.when" in issues[0] or ":4: steps.check.branch.0.if" in issues[0]
    assert "not allowed" in issues[0] or "private" in issues[0]


def test_step_with_two_actions_and_bad_digit_bounds(tmp_path: Path) -> None:
    issues = refused(
        tmp_path,
        """
        steps:
          both:
            say: hi
            hangup: true
          digits:
            gather:
              name: acct
              digits: {min: 8, max: 4}
        """,
    )
    assert any(":2: steps.both: step has several actions (say, hangup)" in i for i in issues)
    assert any(":8: steps.digits.gather.digits" in i and "greater than max" in i for i in issues)


def test_yaml_syntax_error(tmp_path: Path) -> None:
    issues = refused(tmp_path, "steps:\n  a:\n    say: [unclosed\n  b: 1\n")
    assert len(issues) == 1
    assert issues[0].startswith(f"{tmp_path / 'bad.yaml'}:")
    assert "invalid YAML" in issues[0]


def test_unknown_queue_and_subflow(tmp_path: Path) -> None:
    issues = refused(
        tmp_path,
        """
        steps:
          sub:
            call: not_a_flow
          q:
            queue: {name: complaints}
        """,
        QUEUES,
    )
    assert any(":2: steps.sub: sub-flow 'not_a_flow' does not exist" in i for i in issues)
    assert any(":4: steps.q: unknown queue 'complaints'" in i for i in issues)


def test_bad_placeholder_and_bad_key(tmp_path: Path) -> None:
    issues = refused(
        tmp_path,
        """
        steps:
          greet:
            say: "Hello {customer.__class__}"
          menu:
            menu:
              prompt: hi
              options:
                - {key: "12", goto: greet}
        """,
    )
    assert any(":3: steps.greet.say" in i and "bad placeholder" in i for i in issues)
    assert any(":8: steps.menu.menu.options.0.key" in i and "one DTMF key" in i for i in issues)


def test_unreachable_step_is_a_warning_only(tmp_path: Path) -> None:
    write(
        tmp_path,
        "warn.yaml",
        """
        steps:
          a:
            goto: c
          b:
            say: never
          c:
            hangup: true
        """,
    )
    fs = load_flows(tmp_path)
    assert "warn" in fs
    assert [str(w) for w in fs.warnings] == [
        f"{tmp_path / 'warn.yaml'}:4: warning: steps.b: unreachable step"
    ]
    assert check_flows(tmp_path, None, None) == []
    assert len(check_flows(tmp_path, None, None, include_warnings=True)) == 1


def test_check_flows_reports_missing_service_flow(tmp_path: Path) -> None:
    write(tmp_path, "only.yaml", "steps:\n  a:\n    hangup: true\n")
    services = load_services(ROOT / "config" / "services.yaml")
    problems = check_flows(tmp_path, services, ["general"])
    assert any("uses flow 'main_menu'" in p for p in problems)
    assert not any("'echo'" in p for p in problems)  # a built-in app, not a YAML flow


def test_not_a_mapping(tmp_path: Path) -> None:
    issues = refused(tmp_path, "- just\n- a list\n")
    assert issues == [f"{tmp_path / 'bad.yaml'}:1: a flow file must be a mapping with 'steps'"]


def test_duplicate_flow_name_refused(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "name: same\nsteps:\n  a:\n    hangup: true\n")
    write(tmp_path, "b.yaml", "name: same\nsteps:\n  b:\n    hangup: true\n")
    with pytest.raises(FlowLoadError) as exc:
        load_flows(tmp_path)
    assert [str(i) for i in exc.value.issues] == [
        f"{tmp_path / 'b.yaml'}:1: flow name 'same' is already defined in {tmp_path / 'a.yaml'}"
    ]


def test_demo_phrases_are_known_to_the_recogniser(tmp_path: Path) -> None:
    from callcenter.ivr.check import check_phrases
    from callcenter.speech import SphinxRecognizer, SphinxSettings

    rec = SphinxRecognizer(SphinxSettings(cache_dir=tmp_path / "asr"))
    try:
        assert check_phrases(load_flows(ROOT / "ivr_flows"), rec) == []
        write(tmp_path, "odd.yaml", """
            steps:
              m:
                menu:
                  prompt: hi
                  options: [{key: "1", phrases: [billing, zorbleflax]}]
            """)  # fmt: skip
        warnings = check_phrases(load_flows(tmp_path), rec)
        assert warnings == [f"{tmp_path / 'odd.yaml'}:2: warning: steps.m: the recogniser does not "
                            "know zorbleflax"]  # fmt: skip
    finally:
        rec.close()


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"loop.yaml": "steps:\n  a: {say: hi}\n  b: {goto: a}\n"},
         "loop.yaml:2: steps.a: endless goto loop (a → b → a)"),
        ({"loop.yaml": "steps:\n  a: {goto: a}\n"}, "loop.yaml:2: steps.a: endless goto loop (a → a)"),
        ({"self.yaml": "steps:\n  a: {call: self}\n"},
         "self.yaml:2: steps.a: flow 'self' calls itself (self → self)"),
        ({"a.yaml": "steps:\n  x: {call: b}\n", "b.yaml": "steps:\n  y: {say: hi}\n  z: {call: a}\n"},
         "calls itself (a → b → a)"),
    ],
    ids=["goto-cycle", "goto-self", "call-self", "call-cycle"],
)
def test_loops_a_flow_cannot_leave_are_refused(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    for name, text in files.items():
        write(tmp_path, name, text)
    with pytest.raises(FlowLoadError) as exc:
        load_flows(tmp_path)
    assert any(expected in str(i) for i in exc.value.issues), exc.value.issues


def test_loops_with_a_way_out_are_accepted(tmp_path: Path) -> None:
    """A menu that comes back to itself waits for the caller each round; a branch can leave."""
    write(tmp_path, "ok.yaml", """
        steps:
          menu:
            menu:
              prompt: "One for news."
              options:
                - {key: "1", goto: news}
          news: {say: "No news."}
          again: {goto: menu}
        """)
    assert "ok" in load_flows(tmp_path)


def test_step_titles_name_the_path_in_words_and_fall_back_to_the_id(tmp_path: Path) -> None:
    write(tmp_path, "top.yaml", """
        name: top
        steps:
          hello: {say: "Hi", title: Greeted}
          sub: {call: inner}
          plain: {hangup: true}
        """)
    write(tmp_path, "inner.yaml", """
        name: inner
        steps:
          ask: {say: "Your number?", title: Asked for a number}
        """)
    fs = load_flows(tmp_path)
    labels = ("hello", "sub", "inner.ask", "plain", "gone.step")
    assert [fs.step_title(label, "top") for label in labels] == [
        "Greeted", "sub", "Asked for a number", "plain", "gone.step"]
    assert refused(tmp_path, """
        name: bad
        steps:
          s: {say: "x", title: %s}
        """ % ("x" * 81))
