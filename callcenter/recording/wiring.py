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


def install_call_audio(center: Center) -> CallAudio:
    cfg = center.cfg
    settings = cfg.recording
    recording = None
    if settings is not None:
        recording = RecordingService(settings.config, center.bus, directory=settings.directory,
                                     files_dir=Path(cfg.server.crm.files_dir))  # fmt: skip
    phones = {u.username: u.sip.username for u in cfg.supervisors.values() if u.sip is not None}
    show_listen = settings.config.monitor_show_listen if settings is not None else False
    monitoring = MonitorService(center.bus, center.hub, phones, show_listen=show_listen)
    center.app.state.recording = recording
    center.app.state.monitoring = monitoring
    center.app.include_router(recording_router())
    center.app.include_router(monitor_router())
    return CallAudio(recording, monitoring)
