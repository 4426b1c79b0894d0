"""Config validation: clear errors naming the key and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from routing_helpers import DEMO_AGENTS, SKILLS

from routing import ConfigError, Strategy, build_config, load_config_files
from routing.config import load_yaml
from tests.support import ROOT


def test_demo_files_load_with_the_demo_agents() -> None:
    cfg = load_config_files(ROOT / "config/skills.yaml", ROOT / "config/queues.yaml", DEMO_AGENTS)
    assert set(cfg.skills) == {"billing", "technical", "sales", "english", "spanish", "fax"}
    assert set(cfg.queues) == {"billing", "support", "sales", "general", "backoffice"}
    assert cfg.queues["billing"].service_level.percent == 80
    assert cfg.queues["billing"].service_level.seconds == 20
    assert cfg.queues["billing"].overflow == "general"
    assert cfg.queues["sales"].strategy is Strategy.FEWEST_CONTACTS
    assert [a.id for a in cfg.agents] == ["1001", "1002", "1003"]


def test_numeric_agent_id_from_yaml_becomes_text() -> None:
    cfg = build_config(SKILLS, {}, [{"id": 1001, "skills": {"billing": 3}}])
    assert cfg.agents[0].id == "1001"


def problems_of(**docs: object) -> list[str]:
    with pytest.raises(ConfigError) as info:
        build_config(docs.get("skills", SKILLS), docs.get("queues"), docs.get("agents"))  # type: ignore[arg-type]
    return info.value.problems


def test_typo_in_a_queue_key_is_named() -> None:
    problems = problems_of(queues={"queues": {"billing": {"max_wiat_s": 30}}})
    assert any(p.startswith("queues.billing.max_wiat_s:") and "Extra" in p for p in problems)


def test_dispositions_are_ids_and_the_default_list_is_not_empty() -> None:
    problems = problems_of(queues={"queues": {"billing": {"dispositions": ["Paid in full"]}}})
    assert len(problems) == 1 and problems[0].startswith("queues.billing.dispositions.0:")
    problems = problems_of(queues={"settings": {"dispositions": []}, "queues": {"billing": {}}})
    assert len(problems) == 1 and problems[0].startswith("settings.dispositions:")


def test_skill_level_out_of_range_names_agent_and_skill() -> None:
    problems = problems_of(agents=[{"id": "1", "skills": {"billing": 11}}])
    assert problems == ["agents.0.skills.billing: Input should be less than or equal to 10"]


def test_unknown_channel_in_capacity() -> None:
    problems = problems_of(agents=[{"id": "1", "capacity": {"pigeon": 1}}])
    assert len(problems) == 1 and problems[0].startswith("agents.0.capacity:")
    assert "pigeon" in problems[0]


def test_unknown_strategy_lists_the_choices() -> None:
    problems = problems_of(queues={"queues": {"q": {"strategy": "fastest"}}})
    assert problems[0].startswith("queues.q.strategy:")
    assert "longest_idle" in problems[0]


def test_references_unknown_skill_and_missing_overflow() -> None:
    problems = problems_of(
        queues={
            "queues": {
                "a": {"required_skills": {"cooking": 3}, "overflow": "nowhere"},
                "b": {"escalation": [{"after_s": 10, "move_to": "void"}]},
            }
        }
    )
    assert any(p.startswith("queues.a.required_skills: unknown skill 'cooking'") for p in problems)
    assert "queues.a.overflow: queue 'nowhere' does not exist" in problems
    assert "queues.b.escalation.0.move_to: queue 'void' does not exist" in problems


def test_overflow_to_itself_and_duplicate_agent() -> None:
    problems = problems_of(
        queues={"queues": {"a": {"overflow": "a"}}},
        agents=[{"id": "7"}, {"id": 7}],
    )
    assert "queues.a.overflow: a queue cannot overflow to itself" in problems
    assert "agents.1.id: duplicate agent id '7'" in problems


def test_escalation_steps_must_be_ordered_and_do_something() -> None:
    problems = problems_of(
        queues={
            "queues": {
                "a": {
                    "escalation": [{"after_s": 60, "raise_priority": 1}, {"after_s": 30, "raise_priority": 1}]
                },
                "b": {"escalation": [{"after_s": 5}]},
            }
        }
    )
    assert any(p.startswith("queues.a.escalation:") and "increasing" in p for p in problems)
    assert any(p.startswith("queues.b.escalation.0:") and "at least one action" in p for p in problems)


def test_relax_cannot_raise_a_level() -> None:
    problems = problems_of(
        queues={
            "queues": {
                "a": {
                    "required_skills": {"billing": 5},
                    "escalation": [{"after_s": 5, "relax": {"billing": 7}}],
                }
            }
        }
    )
    assert problems == [
        "queues.a.escalation.0.relax.billing: 7 is above the queue's minimum 5; relax only lowers a level"
    ]


def test_unknown_top_level_key_and_bad_settings() -> None:
    problems = problems_of(queues={"queus": {}, "settings": {"exclusive_channels": ["smoke"]}})
    assert any(p.startswith("queus: unknown top-level key") for p in problems)
    assert any(p.startswith("settings.exclusive_channels:") for p in problems)


def test_every_problem_is_reported_at_once() -> None:
    problems = problems_of(
        queues={"queues": {"a": {"max_size": 0}}},
        agents=[{"id": ""}, {"id": "2", "skills": {"billing": 0}}],
    )
    assert len(problems) == 3


def test_yaml_syntax_error_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "queues.yaml"
    bad.write_text("queues:\n  billing: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        load_yaml(bad)
    assert str(bad) in str(info.value)
    assert "invalid YAML" in str(info.value)
