"""Everything ``check-config`` checks, which is also what ``serve`` checks before it starts.

One function for both, so a directory that passes ``callcenter check-config`` starts,
and one that does not is refused by ``serve`` with the same lines: ``file: key: reason``,
one per problem.
"""

from __future__ import annotations

import re
from pathlib import Path

from callcenter.config import AppConfig, load_config
from callcenter.configerrors import ConfigError
from callcenter.ivr.flows import FlowIssue, FlowSet, collect_flows

_KEYED = re.compile(r"^(steps\.[^:\s]+|[\w.]+): (.+)$", re.S)


def _as_problem(issue: FlowIssue) -> tuple[str, str, str]:
    where = f"{issue.file}:{issue.line}" if issue.line else issue.file
    keyed = _KEYED.match(issue.reason)
    return (where, keyed[1], keyed[2]) if keyed else (where, "", issue.reason)


def check_all(directory: Path, flows_dir: Path | None = None) -> tuple[AppConfig, FlowSet]:
    """Load the config directory and its flows; raise ConfigError listing every problem.

    ``flows_dir`` (the ``--flows`` option) overrides ``server.yaml: flows_dir``.
    """
    from callcenter.fax.config_check import fax_problems
    from callcenter.ivr.check import service_problems

    cfg = load_config(directory)
    if flows_dir is not None:
        cfg = cfg.model_copy(update={"flows_dir": flows_dir})
    queues = list(cfg.routing.queues)
    flows, issues = collect_flows(cfg.flows_dir, queues)
    problems = [_as_problem(i) for i in issues]
    services_file = str(cfg.directory / "services.yaml")
    if cfg.flows_dir.is_dir():  # else every service's flow would be reported missing too
        problems += [(services_file, key, why) for key, why in service_problems(cfg.services, flows, queues)]
    problems += fax_problems(cfg)  # fax.detect_on / detect_service / SpanDSP (docs/fax.md)
    if problems:
        raise ConfigError(problems)
    return cfg, flows
