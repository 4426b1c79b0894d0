"""RFC 4733 telephone-events (DTMF digits carried as named events in RTP).

Sending (``TelephoneEventSender``): one packet per 20 ms tick, all with the RTP timestamp
of the event's start; the first carries the marker bit, ``duration`` grows by one packet
time with each update, and the end is sent three times with the E bit and the final
duration (RFC 4733 §2.5.1.4, for robustness against loss).

Receiving (``TelephoneEventReceiver``): a digit is reported once, on the first packet of an
event, keyed by the event's RTP timestamp. The three end packets, retransmissions and late
updates carry the same timestamp and are ignored; an event whose end packets were all lost
was still reported at its start; a long event split into segments (§2.5.1.3: new timestamp,
no marker, continuing the previous one) is not reported again.
"""

from __future__ import annotations

import struct
from collections import deque

_EVT = struct.Struct("!BBH")

DIGITS = "0123456789*#ABCD"
EVENT_OF_DIGIT = {d: i for i, d in enumerate(DIGITS)}
EVENT_OF_DIGIT.update({"a": 12, "b": 13, "c": 14, "d": 15})
DIGIT_OF_EVENT = dict(enumerate(DIGITS))

SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz


def build_payload(event: int, end: bool, volume: int, duration: int) -> bytes:
    return _EVT.pack(event & 0xFF, (0x80 if end else 0) | (volume & 0x3F), duration & 0xFFFF)


def parse_payload(payload: bytes) -> tuple[int, bool, int, int]:
    """Return (event, end, volume, duration); ValueError if too short."""
    if len(payload) < 4:
        raise ValueError("telephone-event payload shorter than 4 octets")
    event, flags, duration = _EVT.unpack_from(payload)
    return event, bool(flags & 0x80), flags & 0x3F, duration


class TelephoneEventSender:
    """Produces the payloads of one digit, one per tick.

    ``next()`` returns ``(payload, marker, is_last)`` and the caller stamps the packets with
    the timestamp captured at the event's start (``start_ts``).
    """

    __slots__ = ("_duration", "_ends_left", "_event", "_packets", "_sent", "start_ts", "volume")

    def __init__(self, digit: str, start_ts: int, duration_ms: int = 100, volume: int = 10):
        if digit not in EVENT_OF_DIGIT:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        self._event = EVENT_OF_DIGIT[digit]
        self.start_ts = start_ts
        self.volume = volume
        self._packets = max(1, duration_ms // 20)
        self._sent = 0
        self._duration = 0
        self._ends_left = 3

    def next(self) -> tuple[bytes, bool, bool]:
        if self._sent < self._packets:
            self._sent += 1
            self._duration = self._sent * SAMPLES_PER_PACKET
            marker = self._sent == 1
            return build_payload(self._event, False, self.volume, self._duration), marker, False
        self._ends_left -= 1
        payload = build_payload(self._event, True, self.volume, self._duration)
        return payload, False, self._ends_left <= 0


class TelephoneEventReceiver:
    """De-duplicating decoder; ``feed`` returns the digit to report or None."""

    __slots__ = ("_last_duration", "_last_ended", "_last_event", "_last_ts", "_seen")

    def __init__(self, memory: int = 32) -> None:
        # recent (timestamp, event) keys, so retransmitted old events are not re-reported
        self._seen: deque[tuple[int, int]] = deque(maxlen=memory)
        self._last_ts: int | None = None
        self._last_event = -1
        self._last_duration = 0
        self._last_ended = True

    def feed(self, payload: bytes, timestamp: int, marker: bool) -> str | None:
        try:
            event, end, _volume, duration = parse_payload(payload)
        except ValueError:
            return None
        digit = DIGIT_OF_EVENT.get(event)
        key = (timestamp, event)
        if key in self._seen:
            if timestamp == self._last_ts:
                self._last_duration = max(self._last_duration, duration)
                self._last_ended = self._last_ended or end
            return None
        # long-event continuation: same event, not ended, new segment right after the last one
        continuation = (
            not marker
            and self._last_ts is not None
            and event == self._last_event
            and not self._last_ended
            and (timestamp - self._last_ts) & 0xFFFFFFFF == self._last_duration
        )
        self._seen.append(key)
        self._last_ts = timestamp
        self._last_event = event
        self._last_duration = duration
        self._last_ended = end
        if continuation:
            return None
        return digit  # None for non-DTMF events (flash, tones): ignored by callers
