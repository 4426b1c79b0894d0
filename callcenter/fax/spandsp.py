"""SpanDSP (Debian's ``libspandsp2``, 0.0.6) through ctypes: the few calls fax needs.

SpanDSP is the fax engine Asterisk and FreeSWITCH use: T.30 over audio (V.17/V.29/V.27ter
modems, ECM), the T.38 terminal, and modem connect-tone detection. We bind its C API with
ctypes instead of building an extension: the library is a Debian package, and every state
object is allocated by SpanDSP itself (``*_init(NULL, ...)``), so the only structure whose
layout we mirror is ``t30_stats_t`` (copied from ``spandsp/t30.h`` of 0.0.6).

Callbacks: a ctypes function pointer must stay referenced as long as C may call it. The
owners (``callcenter.fax.terminal``) keep theirs as attributes until they free the state.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_int, c_int16, c_uint8, c_uint16, c_void_p

# enums from spandsp/t30.h, modem_connect_tones.h, t38_terminal.h (0.0.6)
T30_SUPPORT_V27TER = 0x01
T30_SUPPORT_V29 = 0x02
T30_SUPPORT_V17 = 0x04
T30_SUPPORT_T4_1D_COMPRESSION = 0x02
T30_SUPPORT_T4_2D_COMPRESSION = 0x04
T30_SUPPORT_T6_COMPRESSION = 0x08
T30_ERR_OK = 0
T30_ERR_CALLDROPPED = 49  # "The call dropped prematurely"
MODEM_CONNECT_TONES_FAX_CNG = 1
T38_TERMINAL_OPTION_NO_PACING = 0x01


class T30Stats(Structure):
    _fields_ = [
        ("bit_rate", c_int),
        ("error_correcting_mode", c_int),
        ("pages_tx", c_int),
        ("pages_rx", c_int),
        ("pages_in_file", c_int),
        ("x_resolution", c_int),  # pixels per metre
        ("y_resolution", c_int),
        ("width", c_int),
        ("length", c_int),
        ("image_size", c_int),
        ("encoding", c_int),
        ("bad_rows", c_int),
        ("longest_bad_row_run", c_int),
        ("error_correcting_mode_retries", c_int),
        ("current_status", c_int),
    ]


# void (*)(t30_state_t *s, void *user_data, int completion_code)
PHASE_E_HANDLER = CFUNCTYPE(None, c_void_p, c_void_p, c_int)
# int (*)(t30_state_t *s, void *user_data, int result)
PHASE_D_HANDLER = CFUNCTYPE(c_int, c_void_p, c_void_p, c_int)
# int (*)(t38_core_state_t *s, void *user_data, const uint8_t *buf, int len, int count)
T38_TX_HANDLER = CFUNCTYPE(c_int, c_void_p, c_void_p, POINTER(c_uint8), c_int, c_int)
# void (*)(void *user_data, int code, int level, int delay)
TONE_REPORT = CFUNCTYPE(None, c_void_p, c_int, c_int, c_int)


class SpanDspMissing(RuntimeError):
    """libspandsp2 is not installed (the bootstrap installs it: apt package libspandsp2)."""


def _declare(lib: ctypes.CDLL) -> None:
    sig: dict[str, tuple[object, list[object]]] = {
        "fax_init": (c_void_p, [c_void_p, c_int]),
        "fax_free": (c_int, [c_void_p]),
        "fax_rx": (c_int, [c_void_p, POINTER(c_int16), c_int]),
        "fax_rx_fillin": (c_int, [c_void_p, c_int]),
        "fax_tx": (c_int, [c_void_p, POINTER(c_int16), c_int]),
        "fax_set_transmit_on_idle": (None, [c_void_p, c_int]),
        "fax_get_t30_state": (c_void_p, [c_void_p]),
        "t38_terminal_init": (c_void_p, [c_void_p, c_int, T38_TX_HANDLER, c_void_p]),
        "t38_terminal_free": (c_int, [c_void_p]),
        "t38_terminal_send_timeout": (c_int, [c_void_p, c_int]),
        "t38_terminal_set_config": (None, [c_void_p, c_int]),
        "t38_terminal_get_t30_state": (c_void_p, [c_void_p]),
        "t38_terminal_get_t38_core_state": (c_void_p, [c_void_p]),
        "t38_core_rx_ifp_packet": (c_int, [c_void_p, POINTER(c_uint8), c_int, c_uint16]),
        "t38_set_t38_version": (None, [c_void_p, c_int]),
        "t30_set_tx_ident": (c_int, [c_void_p, c_char_p]),
        "t30_get_rx_ident": (c_char_p, [c_void_p]),
        "t30_set_rx_file": (None, [c_void_p, c_char_p, c_int]),
        "t30_set_tx_file": (None, [c_void_p, c_char_p, c_int, c_int]),
        "t30_set_ecm_capability": (c_int, [c_void_p, c_int]),
        "t30_set_supported_modems": (c_int, [c_void_p, c_int]),
        "t30_set_supported_compressions": (c_int, [c_void_p, c_int]),
        "t30_set_phase_e_handler": (None, [c_void_p, PHASE_E_HANDLER, c_void_p]),
        "t30_set_phase_d_handler": (None, [c_void_p, PHASE_D_HANDLER, c_void_p]),
        "t30_get_transfer_statistics": (None, [c_void_p, POINTER(T30Stats)]),
        "t30_completion_code_to_str": (c_char_p, [c_int]),
        "t30_terminate": (None, [c_void_p]),
        "t30_call_active": (c_int, [c_void_p]),
        "modem_connect_tones_rx_init": (c_void_p, [c_void_p, c_int, TONE_REPORT, c_void_p]),
        "modem_connect_tones_rx": (c_int, [c_void_p, POINTER(c_int16), c_int]),
        "modem_connect_tones_rx_get": (c_int, [c_void_p]),
        "modem_connect_tones_rx_free": (c_int, [c_void_p]),
    }
    for name, (restype, argtypes) in sig.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


_lib: ctypes.CDLL | None = None


def lib() -> ctypes.CDLL:
    """The loaded library, declared once per process (media workers load their own)."""
    global _lib
    if _lib is None:
        name = ctypes.util.find_library("spandsp") or "libspandsp.so.2"
        try:
            loaded = ctypes.CDLL(name)
        except OSError as exc:
            raise SpanDspMissing(
                f"SpanDSP not found ({exc}); install the Debian package libspandsp2"
            ) from exc
        _declare(loaded)
        _lib = loaded
    return _lib


def available() -> bool:
    try:
        lib()
    except SpanDspMissing:
        return False
    return True


def completion_text(code: int) -> str:
    raw = lib().t30_completion_code_to_str(code)
    return raw.decode("ascii", "replace") if raw else f"T.30 code {code}"
