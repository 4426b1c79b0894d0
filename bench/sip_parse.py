"""Benchmark: SIP message parsing, ours vs sipmessage 0.7.1 (if importable).

Measures messages/s for a typical INVITE (parse + reading the views the SIP layers
use: Vias, From/To tags, CSeq, Call-ID, Contact) and how each parser treats the
RFC 4475 torture vectors. Prints a table and writes bench/results/sip_parse.json.
Single process, one core; the machine's 2 cores are shared with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys
import time

ROOT = pathlib.Path(os.environ.get("CALLCENTER_ROOT") or pathlib.Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

from callcenter.sip.message import SipMessage, SipParseError  # noqa: E402

INVITE = (
    b"INVITE sip:600@127.0.0.1:5060 SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 127.0.0.1:5061;branch=z9hG4bK-1234-1-0;rport\r\n"
    b"From: sipp <sip:sipp@127.0.0.1:5061>;tag=1234SIPpTag001\r\n"
    b"To: <sip:600@127.0.0.1:5060>\r\n"
    b"Call-ID: 1-1234@127.0.0.1\r\n"
    b"CSeq: 1 INVITE\r\n"
    b"Contact: sip:sipp@127.0.0.1:5061\r\n"
    b"Max-Forwards: 70\r\n"
    b"Subject: Performance Test\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 129\r\n\r\n"
    b"v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\n"
    b"c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
)

VALID = {"wsinv", "intmeth", "esc01", "escnull", "esc02", "lwsdisp", "longreq", "dblreq",
         "semiuri", "transports", "mpart01", "unreason", "noreason"}
INVALID = {"badinv01", "clerr", "ncl", "scalar02", "scalarlg", "quotbal", "ltgtruri",
           "lwsruri", "lwsstart", "trws", "escruri", "regbadct", "badaspec", "baddn",
           "badvers", "mismatch01", "mismatch02", "bigcode", "insuf", "multi01", "mcl01",
           "unkscm", "novelsc"}


def ours(data: bytes) -> None:
    m = SipMessage.parse(data)
    _ = (m.vias[0].branch, m.from_.tag, m.to.tag, m.cseq, m.call_id, m.contacts)


def theirs_factory():
    try:
        import sipmessage
    except ImportError:
        return None

    def theirs(data: bytes) -> None:
        m = sipmessage.Message.parse(data)
        _ = (m.via[0].parameters.get("branch"), m.from_address.parameters.get("tag"),
             m.to_address.parameters.get("tag"), m.cseq, m.call_id, m.contact)

    return theirs


def rate(fn, seconds: float) -> float:
    """Messages per second of CPU time used by this process: the machine is shared, so
    wall-clock rates swing with the neighbours' load while CPU time does not."""
    n = 0
    t0 = time.process_time()
    deadline = t0 + seconds
    while True:
        for _ in range(500):
            fn(INVITE)
        n += 500
        now = time.process_time()
        if now >= deadline:
            return n / (now - t0)


def torture(fn) -> dict[str, int]:
    vec = ROOT / "tests" / "sip" / "rfc4475"
    out = {"valid_accepted": 0, "valid_total": 0, "invalid_rejected": 0, "invalid_total": 0}
    for path in sorted(vec.glob("*.dat")):
        name = path.stem
        data = path.read_bytes()
        try:
            fn(data)
            ok = True
        except (SipParseError, ValueError, KeyError, IndexError, TypeError, AttributeError):
            ok = False
        if name in VALID:
            out["valid_total"] += 1
            out["valid_accepted"] += ok
        elif name in INVALID:
            out["invalid_total"] += 1
            out["invalid_rejected"] += not ok
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "sip_parse.json"))
    args = ap.parse_args()
    seconds = 1.0 if args.quick else 5.0
    rows = {"ours": (ours, rate(ours, seconds), torture(ours))}
    theirs = theirs_factory()
    if theirs is not None:
        rows["sipmessage 0.7.1"] = (theirs, rate(theirs, seconds), torture(theirs))
    print(f"{'parser':18s} {'INVITE msg/CPU-s':>17s} {'valid ok':>9s} {'invalid rejected':>17s}")
    result = {"cpu_note": "2 cores shared with other work; one process", "parsers": {}}
    for name, (_, r, t) in rows.items():
        print(f"{name:18s} {r:17,.0f} {t['valid_accepted']:>4d}/{t['valid_total']:<4d}"
              f" {t['invalid_rejected']:>8d}/{t['invalid_total']}")
        result["parsers"][name] = {"invite_msgs_per_cpu_s": round(r), **t}
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    pathlib.Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
