"""Builds call recording and supervisor monitoring and adds them to a ``Center``
(callcenter/center.py): the services, their HTTP routes; ``attach`` once the voice
channel exists, ``close`` before it goes."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from callcenter.monitoring.api import make_router as monitor_router
from callcenter.monitoring.service import MonitorService
from callcenter.recording.api import make_router as recording_router
from callcenter.recording.service import RecordingService
from callcenter.web.tokens import load_or_create_key

LINK_KEY_FILE = "recording-link.key"

if TYPE_CHECKING:
    from callcenter.center import Center
    from callcenter.channels.voice import VoiceChannel


class CallAudio:
    def __init__(self, recording: RecordingService | None, monitoring: MonitorService) -> None:
        self.recording = recording
        self.monitoring = monitoring

    def attach(self, voice: VoiceChannel) -> None:
        if self.recording is not None:
            self.recording.attach(voice)
        self.monitoring.attach(voice)

    async def close(self) -> None:
        await self.monitoring.close()
        if self.recording is not None:
            await self.recording.close()


def link_key(data_dir: Path) -> bytes:
    """The key that signs playback links: ``<data_dir>/recording-link.key``, created once
    (random, mode 0600), so a link given before a restart still plays after it. Nodes of a
    cluster that serve each other's links share this file (docs/recording.md)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return load_or_create_key(data_dir / LINK_KEY_FILE, what="recording link key",
                                  event="recording.link_key")  # fmt: skip
    except OSError as exc:
        raise ValueError(f"{data_dir / LINK_KEY_FILE}: cannot use it: {exc.strerror}") from None


def install_call_audio(center: Center) -> CallAudio:
    cfg = center.cfg
    settings = cfg.recording
    recording = None
    if settings is not None:
        recording = RecordingService(settings.config, center.bus, directory=settings.directory,
                                     files_dir=Path(cfg.server.crm.files_dir), hub=center.hub,
                                     link_key=link_key(cfg.data_dir))  # fmt: skip
    phones = {u.username: u.sip.username for u in cfg.supervisors.values() if u.sip is not None}
    show_listen = settings.config.monitor_show_listen if settings is not None else False
    monitoring = MonitorService(center.bus, center.hub, phones, show_listen=show_listen)
    center.app.state.recording = recording
    center.app.state.monitoring = monitoring
    center.app.include_router(recording_router())
    center.app.include_router(monitor_router())
    return CallAudio(recording, monitoring)
