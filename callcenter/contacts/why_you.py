""""Why you" for the agent's screen-pop: routing's decision facts as one plain sentence.

Routing explains each offer with a technical line (for supervisors and logs) and the
structured facts behind it; the agent gets those facts in words, e.g. "You have skill
billing at level 4; you were the longest idle of 3 agents." Facts this module does not
know give "" and the desk shows routing's own line instead.
"""

from __future__ import annotations

from typing import Any

# strategy → how the agent stood out among the ``n`` (more than one) eligible agents
_STRATEGY = {
    "longest_idle": "you were the longest idle of {n}",
    "most_skilled": "you were the most skilled of {n}",
    "least_occupied": "you were the least busy of {n}",
    "fewest_contacts": "you had handled the fewest contacts today of {n}",
    "round_robin": "it was your turn among {n}",
}


def _skills(facts: dict[str, Any]) -> str:
    levels = facts.get("agent_levels") or {}
    required = [s for s in facts.get("required") or {} if s in levels]
    if not required:
        return "This queue needs no particular skill"
    parts = [f"{s} at level {levels[s]}" for s in required]
    words = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"You have skill{'s' if len(parts) > 1 else ''} {words}"


def why_you(facts: dict[str, Any]) -> str:
    """The sentence, or "" when the facts are not an offer's (or routing explained nothing)."""
    decision = facts.get("decision")
    if decision == "task_first":
        strategy = facts.get("strategy")
        if strategy == "preferred_agent":
            how = "you served this customer before"
        elif strategy in _STRATEGY:
            n = int(facts.get("eligible_considered") or 1)
            how = (_STRATEGY[strategy].format(n=f"{n} agents") if n > 1
                   else "you were the only agent who could take it")  # fmt: skip
        else:
            return ""
    elif decision == "agent_first":
        n = int(facts.get("heads_considered") or 1)
        how = (f"you became free and this was the most urgent of {n} waiting calls you could take"
               if n > 1 else "you became free and this was the call waiting for you")  # fmt: skip
    else:
        return ""
    sentence = f"{_skills(facts)}; {how}"
    if facts.get("escalation_steps"):
        sentence += " (the caller had waited, so the queue widened its search)"
    return sentence + "."
