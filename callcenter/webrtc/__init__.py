"""The browser phone: a WebRTC softphone in the agent desk (docs/webrtc.md).

The browser's WebRTC leg ends in this process (aiortc: ICE, DTLS-SRTP, PCMU/PCMA first,
Opus when the browser insists). Towards the rest of the server each connected browser is
an ordinary SIP phone: a small in-process SIP gateway (``gateway.py``) registers a binding
for the agent, the voice channel places its agent leg to it like to any desk phone, and
the gateway hands that leg's plain RTP to the browser's peer connection. So routing, RONA,
hold, transfer, recording and the media workers see nothing new.

- ``audio.py``: the audio seam between aiortc frames and 20 ms PCM at 8 kHz
- ``line.py``: ``PhoneLine``, one browser's persistent peer connection
- ``leg_media.py``: ``BrowserLegMedia``, the gateway-side RTP of one call (a MediaSession)
- ``gateway.py``: ``BrowserPhones``, the gateway UA, the lines, the registrar bindings
- ``api.py``: the signalling WebSocket ``/api/phone/ws`` and ``GET /api/phone/config``
- ``wiring.py``: ``install_webrtc(center)``
"""
