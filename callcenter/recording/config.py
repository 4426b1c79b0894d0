"""recording.yaml: who is recorded, consent, beep, retention, playback, monitoring (optional
file; without it nothing is recorded and supervisors can still monitor)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from callcenter.configerrors import ConfigError

Policy = Literal["always", "on_demand", "never"]


class RecordingConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: str = ""  # WAVs being written and the index; "": <data_dir>/recordings
    default: Policy = "never"  # for services and queues not named below
    services: dict[str, Policy] = {}  # "always" here records from the answer (the IVR included)
    queues: dict[str, Policy] = {}  # a queue's policy wins over its service's once the call is queued
    consent_prompt: str = "This call may be recorded for quality and training."
    consent_services: list[str] = []  # services whose callers hear consent_prompt before the flow
    beep_every_s: float = Field(0.0, ge=0.0, le=600.0)  # 0: no beep; else a short tone to both parties
    bitrate_kbps: int = Field(24, ge=6, le=256)  # Opus, stereo
    retention_days: int = Field(90, ge=1, le=36500)
    agents_play_own: bool = False  # agents may play back recordings of their own calls
    monitor_show_listen: bool = False  # the agent's desk also shows a supervisor listening


def policy_for(cfg: RecordingConfig, service: str, queue: str | None) -> Policy:
    if queue is not None and queue in cfg.queues:
        return cfg.queues[queue]
    return cfg.services.get(service, cfg.default)


def check_references(cfg: RecordingConfig, file: Path, services: set[str], queues: set[str]) -> None:
    problems = [(str(file), f"services.{s}", "unknown service") for s in cfg.services if s not in services]
    problems += [(str(file), f"queues.{q}", "unknown queue") for q in cfg.queues if q not in queues]
    problems += [(str(file), "consent_services", f"unknown service {s!r}")
                 for s in cfg.consent_services if s not in services]
    if problems:
        raise ConfigError(problems)


@dataclass(frozen=True)
class RecordingSettings:
    config: RecordingConfig
    directory: Path  # WAVs being written, the index of stored recordings


def load(path: Path, data_dir: Path, services: set[str], queues: set[str]) -> RecordingSettings | None:
    """recording.yaml of a config directory; None when there is none (nothing is recorded)."""
    from callcenter.config import _validate, read_yaml

    if not path.is_file():
        return None
    cfg = _validate(RecordingConfig, read_yaml(path) or {}, path)
    check_references(cfg, path, services, queues)
    directory = Path(cfg.directory) if cfg.directory else data_dir / "recordings"
    return RecordingSettings(cfg, directory)
