"""RTP media: G.711, RFC 4733 and in-band DTMF, SDP offer/answer, the shared-clock engine.

The SIP layer uses ``MediaEngine`` and ``RtpSession`` (see docs/media.md); everything
else here is the pieces they are built from, usable on their own.
"""

from callcenter.media.audio_files import AudioFormatError
from callcenter.media.engine import MediaEngine
from callcenter.media.interface import MediaSession
from callcenter.media.ports import NoFreePortError
from callcenter.media.session import RtpSession

__all__ = ["AudioFormatError", "MediaEngine", "MediaSession", "NoFreePortError", "RtpSession"]
