from callcenter.media import telephone_event as te


def _packets(digit: str, start_ts: int = 1000, ms: int = 100) -> list[tuple[bytes, bool, bool]]:
    s = te.TelephoneEventSender(digit, start_ts, duration_ms=ms)
    out = []
    while True:
        out.append(s.next())
        if out[-1][2]:
            return out


def test_sender_start_updates_and_three_ends() -> None:
    pkts = _packets("5", ms=100)
    parsed = [te.parse_payload(p) for p, _, _ in pkts]
    assert [m for _, m, _ in pkts] == [True] + [False] * 7
    assert [e for e, _, _, _ in parsed] == [5] * 8
    assert [end for _, end, _, _ in parsed] == [False] * 5 + [True] * 3
    assert [d for _, _, _, d in parsed] == [160, 320, 480, 640, 800, 800, 800, 800]


def test_receiver_reports_once_despite_three_ends_and_retransmission() -> None:
    rx = te.TelephoneEventReceiver()
    got = []
    for digit, ts in (("1", 1000), ("1", 3000), ("#", 5000)):
        for p, marker, _ in _packets(digit, ts):
            got.append(rx.feed(p, ts, marker))
    # a retransmission of the whole first event (same timestamp) is ignored
    for p, marker, _ in _packets("1", 1000):
        got.append(rx.feed(p, 1000, marker))
    assert [d for d in got if d] == ["1", "1", "#"]


def test_event_losing_start_or_end_packets_counted_once() -> None:
    rx = te.TelephoneEventReceiver()
    a = _packets("7", 100)
    b = _packets("8", 2000)
    got = [rx.feed(p, 100, m) for p, m, _ in a[:3]]  # all end packets lost
    got += [rx.feed(p, 2000, m) for p, m, _ in b[2:]]  # start packets lost
    assert [d for d in got if d] == ["7", "8"]


def test_long_event_segments_are_one_digit() -> None:
    rx = te.TelephoneEventReceiver()
    seg1 = te.build_payload(3, False, 10, 65000)
    seg2 = te.build_payload(3, False, 10, 8000)
    assert rx.feed(seg1, 0, True) == "3"
    assert rx.feed(seg2, 65000, False) is None
    assert rx.feed(te.build_payload(3, True, 10, 8000), 65000, False) is None


def test_garbage_and_non_dtmf_events() -> None:
    rx = te.TelephoneEventReceiver()
    assert rx.feed(b"\x01", 0, True) is None
    assert rx.feed(te.build_payload(16, False, 10, 160), 10, True) is None  # flash
