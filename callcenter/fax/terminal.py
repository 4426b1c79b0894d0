"""Fax terminals on SpanDSP: T.30 over audio (``AudioFax``), over T.38 (``T38Fax``),
and CNG detection (``CngDetector``).

A terminal is driven by whoever owns the media: it is fed received audio (or T.38 IFP
packets) and asked for what to send every 20 ms; it never runs a timer of its own, so a
media engine's shared clock drives many of them. When T.30 reaches phase E (the end of
the session, normal or not) ``result`` is set and ``on_done`` is called once.

Each terminal keeps its ctypes callback objects as attributes until ``close()``: SpanDSP
holds raw function pointers, and a collected callback would crash the process.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from callcenter.fax import spandsp
from callcenter.fax.spandsp import T30Stats, lib

FRAME = 160  # samples per 20 ms at 8 kHz
SILENCE = bytes(2 * FRAME)
PELS_PER_METRE_TO_DPI = 0.0254


@dataclass(slots=True)
class FaxJob:
    """What one fax session does: receive into ``path`` or send the TIFF at ``path``."""

    direction: str  # "receive" | "send"
    path: str
    ident: str = ""  # our station id (CSI when receiving, TSI when sending), <= 20 chars
    ecm: bool = True
    modems: int = spandsp.T30_SUPPORT_V27TER | spandsp.T30_SUPPORT_V29 | spandsp.T30_SUPPORT_V17


@dataclass(slots=True)
class FaxResult:
    """The outcome of a T.30 session, as plain data (it crosses the media worker pipe)."""

    ok: bool
    code: int  # T.30 completion code (0 = OK)
    reason: str  # SpanDSP's text for the code
    pages: int  # pages transferred (received or sent)
    bit_rate: int
    ecm: bool
    x_dpi: int
    y_dpi: int
    width: int
    remote_ident: str  # the far end's TSI (when we receive) or CSI (when we send)
    bad_rows: int
    path: str
    transport: str = "audio"  # "audio" (T.30 over G.711) | "t38"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def partial(self) -> bool:
        """Some pages arrived but the session did not end well: keep them, flag them."""
        return not self.ok and self.pages > 0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["partial"] = self.partial
        return d


class _T30Terminal:
    """What both transports share: T.30 set-up from a ``FaxJob`` and the phase E result."""

    def __init__(self, job: FaxJob, transport: str) -> None:
        self.job = job
        self.transport = transport
        self.result: FaxResult | None = None
        self.on_done: Callable[[FaxResult], Any] | None = None
        self._t30: int | None = None
        self._phase_e = spandsp.PHASE_E_HANDLER(self._phase_e_cb)
        self._pages_seen = 0

    def _setup_t30(self, t30: int) -> None:
        api = lib()
        self._t30 = t30
        job = self.job
        if job.ident:
            api.t30_set_tx_ident(t30, job.ident[:20].encode("ascii", "replace"))
        api.t30_set_ecm_capability(t30, 1 if job.ecm else 0)
        api.t30_set_supported_modems(t30, job.modems)
        compressions = spandsp.T30_SUPPORT_T4_1D_COMPRESSION | spandsp.T30_SUPPORT_T4_2D_COMPRESSION
        if job.ecm:
            compressions |= spandsp.T30_SUPPORT_T6_COMPRESSION  # T.6 needs ECM
        api.t30_set_supported_compressions(t30, compressions)
        path = job.path.encode()
        if job.direction == "receive":
            api.t30_set_rx_file(t30, path, -1)
        elif job.direction == "send":
            api.t30_set_tx_file(t30, path, -1, -1)
        else:
            raise ValueError(f"fax direction must be receive or send, not {job.direction!r}")
        api.t30_set_phase_e_handler(t30, self._phase_e, None)

    def statistics(self) -> T30Stats:
        stats = T30Stats()
        if self._t30 is not None:
            lib().t30_get_transfer_statistics(self._t30, ctypes.byref(stats))
        return stats

    def pages(self) -> int:
        st = self.statistics()
        return st.pages_rx if self.job.direction == "receive" else st.pages_tx

    def _phase_e_cb(self, _t30: int, _user: int, code: int) -> None:
        if self.result is not None:
            return
        st = self.statistics()
        raw = lib().t30_get_rx_ident(self._t30) if self._t30 is not None else None
        self.result = FaxResult(
            ok=code == spandsp.T30_ERR_OK,
            code=code,
            reason=spandsp.completion_text(code),
            pages=st.pages_rx if self.job.direction == "receive" else st.pages_tx,
            bit_rate=st.bit_rate,
            ecm=bool(st.error_correcting_mode),
            x_dpi=round(st.x_resolution * PELS_PER_METRE_TO_DPI),
            y_dpi=round(st.y_resolution * PELS_PER_METRE_TO_DPI),
            width=st.width,
            remote_ident=(raw or b"").decode("ascii", "replace").strip(),
            bad_rows=st.bad_rows,
            path=self.job.path,
            transport=self.transport,
        )
        cb = self.on_done
        if cb is not None:
            cb(self.result)

    @property
    def done(self) -> bool:
        return self.result is not None

    def hangup(self) -> FaxResult:
        """The call ended: T.30 finishes now (call dropped, unless it had finished), which
        closes the received file with the pages that arrived complete."""
        if self.result is None and self._t30 is not None:
            lib().t30_terminate(self._t30)
        if self.result is None:  # terminate reports through phase E; be sure of a result
            self._phase_e_cb(0, 0, spandsp.T30_ERR_CALLDROPPED)
        assert self.result is not None
        return self.result


class AudioFax(_T30Terminal):
    """T.30 over 8 kHz audio (G.711 on the wire, decoded to 16-bit PCM by the caller)."""

    def __init__(self, job: FaxJob, *, calling: bool | None = None) -> None:
        super().__init__(job, "audio")
        api = lib()
        calling = job.direction == "send" if calling is None else calling
        self._state = api.fax_init(None, 1 if calling else 0)
        if not self._state:
            raise RuntimeError("fax_init failed")
        api.fax_set_transmit_on_idle(self._state, 1)  # always a full frame: the line never gaps
        self._setup_t30(api.fax_get_t30_state(self._state))
        self._txbuf = (ctypes.c_int16 * FRAME)()

    def rx(self, pcm: bytes) -> None:
        """Received audio: 16-bit native-endian PCM at 8 kHz, any length."""
        if self._state is None or not pcm:
            return
        n = len(pcm) // 2
        buf = (ctypes.c_int16 * n).from_buffer_copy(pcm, 0)
        lib().fax_rx(self._state, buf, n)

    def rx_missing(self, samples: int) -> None:
        """Audio lost on the way (an RTP sequence gap): SpanDSP keeps its timing."""
        if self._state is not None and samples > 0:
            lib().fax_rx_fillin(self._state, samples)

    def tx(self) -> bytes:
        """The next 20 ms to send, as 16-bit PCM (silence once closed)."""
        if self._state is None:
            return SILENCE
        n = lib().fax_tx(self._state, self._txbuf, FRAME)
        data = bytes(self._txbuf)
        return data if n >= FRAME else data[: 2 * max(n, 0)] + SILENCE[2 * max(n, 0):]

    def close(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            if self.result is None:
                self.hangup()
            lib().fax_free(state)
        self._t30 = None


class T38Fax(_T30Terminal):
    """T.30 carried as T.38 IFP packets. ``send_ifp(ifp, count)`` is called for each packet
    SpanDSP emits (``count``: how many copies it asks for; UDPTL redundancy does that job,
    see ``callcenter.fax.udptl``); ``tick()`` every 20 ms drives its timers."""

    def __init__(self, job: FaxJob, send_ifp: Callable[[bytes, int], Any], *,
                 calling: bool | None = None, pacing: bool = True) -> None:
        super().__init__(job, "t38")
        api = lib()
        calling = job.direction == "send" if calling is None else calling
        self._send_ifp = send_ifp
        self._tx_cb = spandsp.T38_TX_HANDLER(self._tx_packet)
        self._state = api.t38_terminal_init(None, 1 if calling else 0, self._tx_cb, None)
        if not self._state:
            raise RuntimeError("t38_terminal_init failed")
        if not pacing:  # a test harness with no clock between the peers
            api.t38_terminal_set_config(self._state, spandsp.T38_TERMINAL_OPTION_NO_PACING)
        self._core = api.t38_terminal_get_t38_core_state(self._state)
        self._setup_t30(api.t38_terminal_get_t30_state(self._state))

    def _tx_packet(self, _core: int, _user: int, buf: Any, length: int, count: int) -> int:
        self._send_ifp(ctypes.string_at(buf, length), count)
        return 0

    def rx_ifp(self, ifp: bytes, seq: int) -> None:
        if self._state is None:
            return
        buf = (ctypes.c_uint8 * max(len(ifp), 1)).from_buffer_copy(ifp.ljust(1, b"\0"))
        lib().t38_core_rx_ifp_packet(self._core, buf, len(ifp), seq & 0xFFFF)

    def tick(self, samples: int = FRAME) -> None:
        if self._state is not None:
            lib().t38_terminal_send_timeout(self._state, samples)

    def close(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            if self.result is None:
                self.hangup()
            lib().t38_terminal_free(state)
        self._t30 = None


class CngDetector:
    """The calling fax's CNG tone (1100 Hz, 0.5 s on / 3 s off) in received audio, as
    Asterisk's faxdetect hears it. ``push(pcm)`` returns True once CNG is heard."""

    def __init__(self) -> None:
        self.detected = False
        self._cb = spandsp.TONE_REPORT(self._report)
        self._state = lib().modem_connect_tones_rx_init(
            None, spandsp.MODEM_CONNECT_TONES_FAX_CNG, self._cb, None
        )

    def _report(self, _user: int, code: int, _level: int, _delay: int) -> None:
        if code == spandsp.MODEM_CONNECT_TONES_FAX_CNG:
            self.detected = True

    def push(self, pcm: bytes) -> bool:
        if self._state is None or self.detected:
            return self.detected
        n = len(pcm) // 2
        if n:
            buf = (ctypes.c_int16 * n).from_buffer_copy(pcm, 0)
            lib().modem_connect_tones_rx(self._state, buf, n)
        return self.detected

    def close(self) -> None:
        state, self._state = self._state, None
        if state is not None:
            lib().modem_connect_tones_rx_free(state)
