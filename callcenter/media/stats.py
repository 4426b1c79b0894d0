"""Per-session RTP counters (plain slots object, cheap to update on the hot path)."""

from __future__ import annotations

import math

from callcenter.media.dtmf_inband import DBM0_PEAK


class SessionStats:
    __slots__ = (
        "jitter",
        "rx_bytes",
        "rx_energy_sum",
        "rx_ignored",
        "rx_malformed",
        "rx_packets",
        "rx_samples",
        "rx_srtp_failed",
        "tx_bytes",
        "tx_dropped",
        "tx_late",
        "tx_max_late",
        "tx_packets",
    )

    def __init__(self) -> None:
        self.rx_packets = 0
        self.rx_bytes = 0
        self.rx_malformed = 0  # not RTP v2 / truncated
        self.rx_ignored = 0  # wrong source, unknown payload type
        self.rx_srtp_failed = 0  # SRTP authentication or replay check failed: dropped
        # Σ sample² of decoded audio and the samples counted; updated every 200 ms of
        # received audio (batched: see RtpSession._on_datagram) and at close
        self.rx_energy_sum = 0.0
        self.rx_samples = 0
        self.jitter = 0.0  # RFC 3550 interarrival jitter, in timestamp units (1/8000 s)
        self.tx_packets = 0
        self.tx_bytes = 0
        self.tx_dropped = 0  # socket buffer full / send error
        self.tx_late = 0  # packets sent more than 5 ms after their clock tick
        self.tx_max_late = 0.0  # seconds

    @property
    def rx_rms(self) -> float:
        return math.sqrt(self.rx_energy_sum / self.rx_samples) if self.rx_samples else 0.0

    @property
    def rx_level_dbm0(self) -> float:
        """Mean received level; a 0 dBm0 sine has RMS DBM0_PEAK/√2."""
        rms = self.rx_rms
        if rms <= 0:
            return -math.inf
        return 20 * math.log10(rms * math.sqrt(2) / DBM0_PEAK)

    @property
    def jitter_ms(self) -> float:
        return self.jitter / 8.0

    def as_dict(self) -> dict[str, float | int]:
        d: dict[str, float | int] = {k: getattr(self, k) for k in self.__slots__}
        d["rx_rms"] = self.rx_rms
        d["jitter_ms"] = self.jitter_ms
        d["tx_max_late_ms"] = self.tx_max_late * 1000
        return d
