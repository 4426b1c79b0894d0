"""SIP message grammar: a strict, fast parser and serializer (RFC 3261 §7, §25; RFC 4475).

Why our own and not `sipmessage`: see docs/sip.md (figures in docs/benchmarks.md). In short:
the verdicts RFC 4475 asks for (which messages to accept, which get 400/416/505, which
are silently dropped) need a parser that validates the headers the SIP layers rely on,
and doing that in one pass is also what makes it fast.

What `SipMessage.parse` guarantees when it returns:
- the start line is well formed (request: exactly ``METHOD SP URI SP SIP/2.0``;
  response: ``SIP/2.0 SP 3DIGIT SP reason``);
- Via (≥1), From, To, Call-ID, CSeq are present; From/To/Call-ID/CSeq/Max-Forwards/
  Content-Length/Content-Type occur at most once; CSeq's number is < 2**31 and, in a
  request, its method equals the request method; Max-Forwards is 0..255;
- every Via, From, To, Contact, Route and Record-Route value parses (their parsed views
  are ready, so later reads cannot fail);
- the body is exactly Content-Length bytes (extra datagram bytes are dropped, RFC 3261
  §18.3; a short body is an error).

Errors raise `SipParseError` whose `status` is the response to send (400, 416, 505) or
0 when the message must be dropped silently (every malformed *response*, and input that
is not SIP at all).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any, Literal

from .headers import LIST_HEADERS, Headers, Via, canonical_name
from .uri import NameAddr, SipUri, UriError, split_top_level

__all__ = [
    "REASON_PHRASES",
    "Headers",
    "NameAddr",
    "SipMessage",
    "SipParseError",
    "SipUri",
    "Via",
    "build_error_response",
    "make_response",
    "new_tag",
]

SIP_VERSION = "SIP/2.0"
# Request-URI schemes this server can act on; others get 416 (RFC 3261 §8.2.2.1).
SUPPORTED_SCHEMES = frozenset({"sip", "sips", "tel"})
MAX_CSEQ = 2**31 - 1
# Header field values (after splitting comma lists) one message may carry. RFC 4475's
# longreq has 45; the cap bounds the CPU a hostile 64 KB datagram can cost.
MAX_HEADER_FIELDS = 256
# Methods some SIP element may implement; used only to pick 501 over 400 below.
KNOWN_METHODS = frozenset({
    "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "INFO", "REFER", "NOTIFY",
    "SUBSCRIBE", "UPDATE", "PRACK", "MESSAGE", "PUBLISH",
})  # RFC 3261 §8.1.1.5: the sequence number MUST be less than 2**31

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service", 400: "Bad Request", 401: "Unauthorized",
    402: "Payment Required", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    406: "Not Acceptable", 407: "Proxy Authentication Required", 408: "Request Timeout",
    410: "Gone", 413: "Request Entity Too Large", 414: "Request-URI Too Long",
    415: "Unsupported Media Type", 416: "Unsupported URI Scheme", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 600: "Busy Everywhere", 603: "Decline",
    604: "Does Not Exist Anywhere", 606: "Not Acceptable",
}


class SipParseError(ValueError):
    """A message that must not be processed.

    `status` is the response to send back (400, 416, 505…) or 0 for a silent drop.
    `reason` is a short human-readable description, usable as the reason phrase.
    """

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
_CALLID_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALLID_RE = re.compile(rf"{_CALLID_WORD}(?:@{_CALLID_WORD})?")
_CSEQ_RE = re.compile(r"([0-9]+)[ \t]+([A-Za-z0-9\-.!%*_+`'~]+)")
_VERSION_RE = re.compile(r"SIP/[0-9]+\.[0-9]+", re.IGNORECASE)
_DIGITS_RE = re.compile(r"[0-9]+")
_SINGLE = frozenset({"from", "to", "call-id", "cseq", "max-forwards", "content-length",
                     "content-type"})
_REQUIRED = ("via", "from", "to", "call-id", "cseq")
_NAME_CACHE: dict[str, tuple[str, str]] = {}


def _header_key(name: str) -> tuple[str, str]:
    cached = _NAME_CACHE.get(name)
    if cached is not None:
        return cached
    if _TOKEN_RE.fullmatch(name) is None:
        raise SipParseError(f"bad header name {name[:40]!r}")
    canon = canonical_name(name)
    result = (canon.lower(), canon)
    if len(_NAME_CACHE) < 4096:  # bounded: header names are attacker-chosen
        _NAME_CACHE[name] = result
    return result


def new_tag() -> str:
    """A random tag / branch suffix with ≥ 64 bits of entropy (RFC 3261 §19.3)."""
    return secrets.token_hex(8)


@dataclass(eq=False)
class SipMessage:
    """One SIP request (`method`, `uri` set) or response (`status`, `reason` set).

    The parsed views (`vias`, `from_`, `to`, `cseq`, `contacts`…) are computed once and
    cached; any change made through `headers` invalidates the cache. Treat the views
    as read-only snapshots: to change a Via, edit a copy and call `set_top_via`.
    """

    method: str | None = None
    uri: str | None = None
    status: int | None = None
    reason: str = ""
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""
    _cache: dict[str, Any] = field(default_factory=dict, repr=False)
    _cache_version: int = field(default=-1, repr=False)

    # --- construction -----------------------------------------------------------------
    @classmethod
    def request(
        cls,
        method: str,
        uri: str | SipUri,
        headers: list[tuple[str, str]] | Headers | None = None,
        body: bytes = b"",
    ) -> SipMessage:
        hdrs = headers if isinstance(headers, Headers) else Headers(headers or ())
        return cls(method=method, uri=str(uri), headers=hdrs, body=body)

    @property
    def is_request(self) -> bool:
        return self.method is not None

    @classmethod
    def parse(cls, data: bytes, *, stream: bool = False) -> SipMessage:
        """Parse one message. With ``stream=False`` (UDP) a body shorter than
        Content-Length is an error and Content-Length may be absent; with
        ``stream=True`` the caller has framed exactly one message and Content-Length
        is mandatory (RFC 3261 §18.3)."""
        return _parse(cls, data, stream)

    # --- serialization ----------------------------------------------------------------
    def start_line(self) -> str:
        if self.method is not None:
            return f"{self.method} {self.uri} {SIP_VERSION}"
        return f"{SIP_VERSION} {self.status} {self.reason}"

    def to_bytes(self) -> bytes:
        """Wire form; Content-Length is always (re)written last-but-body to match body."""
        lines = [self.start_line()]
        for name, value in self.headers:
            if name != "Content-Length":
                lines.append(f"{name}: {value}")
        lines.append(f"Content-Length: {len(self.body)}")
        lines.append("")
        lines.append("")
        return "\r\n".join(lines).encode("utf-8", "surrogateescape") + self.body

    def __bytes__(self) -> bytes:
        return self.to_bytes()

    # --- parsed views -----------------------------------------------------------------
    def _view(self, key: str) -> Any:
        if self._cache_version != self.headers.version:
            self._cache.clear()
            self._cache_version = self.headers.version
        try:
            return self._cache[key]
        except KeyError:
            pass
        value = _VIEW_BUILDERS[key](self)
        self._cache[key] = value
        return value

    @property
    def call_id(self) -> str:
        return self.headers.get("Call-ID") or ""

    @property
    def cseq(self) -> tuple[int, str]:
        return self._view("cseq")  # type: ignore[no-any-return]

    @property
    def vias(self) -> list[Via]:
        return self._view("vias")  # type: ignore[no-any-return]

    @property
    def top_via(self) -> Via:
        return self.vias[0]

    @property
    def from_(self) -> NameAddr:
        return self._view("from")  # type: ignore[no-any-return]

    @property
    def to(self) -> NameAddr:
        return self._view("to")  # type: ignore[no-any-return]

    @property
    def contacts(self) -> list[NameAddr] | Literal["*"]:
        return self._view("contact")  # type: ignore[no-any-return]

    @property
    def routes(self) -> list[NameAddr]:
        return self._view("route")  # type: ignore[no-any-return]

    @property
    def record_routes(self) -> list[NameAddr]:
        return self._view("record-route")  # type: ignore[no-any-return]

    @property
    def request_uri(self) -> SipUri:
        return self._view("ruri")  # type: ignore[no-any-return]

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        return int(value) if value is not None and value.isdigit() else None

    @property
    def expires(self) -> int | None:
        """Expires in seconds; None if absent or not a number; clamped to 2**32-1
        (RFC 3261 §20.19; RFC 4475 §3.1.2.4 lets an overlarge value be treated so)."""
        value = self.headers.get("Expires")
        if value is None or not value.isdigit():
            return None
        return min(int(value), 2**32 - 1)

    @property
    def content_type(self) -> str | None:
        value = self.headers.get("Content-Type")
        return value.split(";", 1)[0].strip().lower() if value else None

    def header_tokens(self, name: str) -> list[str]:
        """Token-list headers (Require, Supported, Allow…) as lower-cased tokens."""
        out: list[str] = []
        for value in self.headers.get_all(name):
            out.extend(t.strip().lower() for t in value.split(",") if t.strip())
        return out

    def set_top_via(self, via: Via) -> None:
        self.headers.set_first("Via", str(via))

    def __repr__(self) -> str:
        return f"<SipMessage {self.start_line()!r} call_id={self.call_id!r}>"


def _view_cseq(msg: SipMessage) -> tuple[int, str]:
    value = msg.headers.get("CSeq") or ""
    m = _CSEQ_RE.fullmatch(value.strip(" \t"))
    if m is None:
        raise SipParseError(f"bad CSeq {value[:40]!r}")
    return int(m.group(1)), m.group(2)


def _view_vias(msg: SipMessage) -> list[Via]:
    return [Via.parse(v) for v in msg.headers.get_all("Via")]


def _view_nameaddr(name: str) -> Any:
    def build(msg: SipMessage) -> NameAddr:
        value = msg.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name}")
        return NameAddr.parse(value)

    return build


def _view_list(name: str) -> Any:
    def build(msg: SipMessage) -> list[NameAddr] | str:
        values = msg.headers.get_all(name)
        if name == "Contact" and len(values) == 1 and values[0].strip() == "*":
            return "*"
        return [NameAddr.parse(v) for v in values]

    return build


def _view_ruri(msg: SipMessage) -> SipUri:
    return SipUri.parse(msg.uri or "")


_VIEW_BUILDERS = {
    "cseq": _view_cseq,
    "vias": _view_vias,
    "from": _view_nameaddr("From"),
    "to": _view_nameaddr("To"),
    "contact": _view_list("Contact"),
    "route": _view_list("Route"),
    "record-route": _view_list("Record-Route"),
    "ruri": _view_ruri,
}


# --- the parser -----------------------------------------------------------------------
def _parse(cls: type[SipMessage], data: bytes, stream: bool) -> SipMessage:
    start = 0
    # RFC 3261 §7.5: ignore CRLFs before the start line (keep-alives, stream slack).
    while data.startswith(b"\r\n", start):
        start += 2
    if start >= len(data):
        raise SipParseError("empty message (keep-alive)", 0)
    end = data.find(b"\r\n\r\n", start)
    if end < 0:
        raise SipParseError("no blank line after headers", _status_for_garbage(data, start))
    head = data[start:end].decode("utf-8", "surrogateescape")
    lines = head.split("\r\n")
    first = lines[0]
    is_response = first.startswith("SIP/")
    # Any status for a broken response is a drop: responses are never answered.
    fail = 0 if is_response else 400
    # A quoted display name may carry control characters as quoted-pairs (RFC 4475
    # §3.1.1.2 "intmeth"), so we do not ban controls wholesale; a bare CR or LF would
    # break the line framing everything else relies on, so that is refused.
    if head.count("\n") != len(lines) - 1 or head.count("\r") != len(lines) - 1:
        raise SipParseError("bare CR or LF in header section", fail)

    msg = cls()
    if is_response:
        _parse_status_line(msg, first)
    else:
        _parse_request_line(msg, first)

    # --- header fields: one pass, unfolding LWS (RFC 3261 §7.3.1) and splitting comma
    # lists into one entry per value; the values the checks below need are collected
    # on the way so nothing is looked up twice.
    headers = msg.headers
    items = headers._items
    first_of: dict[str, str] = {}
    counts: dict[str, int] = {}
    lists: dict[str, list[str]] = {"via": [], "contact": [], "route": [], "record-route": []}
    for line in _unfold(lines, fail):
        if len(items) >= MAX_HEADER_FIELDS:
            raise SipParseError("too many header fields", fail)
        colon = line.find(":")
        if colon <= 0:
            raise SipParseError(f"header line without name: {line[:40]!r}", fail)
        try:
            key, canon = _header_key(line[:colon].rstrip(" \t"))
        except SipParseError as exc:
            exc.status = fail
            raise
        value = line[colon + 1 :].strip(" \t")
        counts[key] = counts.get(key, 0) + 1
        if key not in first_of:
            first_of[key] = value
        target = lists.get(key)
        if key in LIST_HEADERS and "," in value:
            try:
                parts = split_top_level(value)
            except UriError as exc:
                raise SipParseError(f"{canon}: {exc}", fail) from None
            if len(items) + len(parts) > MAX_HEADER_FIELDS:
                raise SipParseError("too many header fields", fail)
            for part in parts:
                part = part.strip(" \t")
                if part:
                    items.append((key, canon, part))
                    if target is not None:
                        target.append(part)
                elif target is not None:
                    raise SipParseError(f"empty value in {canon} list", fail)
        else:
            items.append((key, canon, value))
            if target is not None:
                target.append(value)
    headers.version += 1

    for key in _SINGLE:
        if counts.get(key, 0) > 1:
            raise SipParseError(f"more than one {canonical_name(key)} header", fail)
    for key in _REQUIRED:
        if key not in counts:
            raise SipParseError(f"missing {canonical_name(key)} header", fail)

    # --- validate and pre-build the views the SIP layers read ---
    cache = msg._cache
    msg._cache_version = headers.version
    try:
        cache["vias"] = [Via.parse(v) for v in lists["via"]]
        cache["from"] = NameAddr.parse(first_of["from"])
        cache["to"] = NameAddr.parse(first_of["to"])
        contacts = lists["contact"]
        if len(contacts) == 1 and contacts[0] == "*":
            cache["contact"] = "*"
        else:
            cache["contact"] = [NameAddr.parse(v) for v in contacts]
        cache["route"] = [NameAddr.parse(v) for v in lists["route"]]
        cache["record-route"] = [NameAddr.parse(v) for v in lists["record-route"]]
    except UriError as exc:
        raise SipParseError(str(exc)[:120], fail) from None
    if _CALLID_RE.fullmatch(first_of["call-id"]) is None:
        raise SipParseError("bad Call-ID", fail)
    m = _CSEQ_RE.fullmatch(first_of["cseq"])
    if m is None:
        raise SipParseError("bad CSeq", fail)
    seq = int(m.group(1))
    cseq_method = m.group(2)
    if seq > MAX_CSEQ:
        raise SipParseError("CSeq number too large", fail)
    cache["cseq"] = (seq, cseq_method)
    if msg.method is not None and cseq_method != msg.method:
        # RFC 4475 §3.1.2.17/18: start line and CSeq method must agree. For an unknown
        # method §3.1.2.18 prefers 501 over 400 ("better future-proof characteristics").
        if msg.method not in KNOWN_METHODS:
            raise SipParseError("Not Implemented", 501)
        raise SipParseError("CSeq method does not match request method", fail)

    mf = first_of.get("max-forwards")
    if mf is not None and (_DIGITS_RE.fullmatch(mf) is None or int(mf) > 255):
        raise SipParseError("bad Max-Forwards", fail)

    # --- body framing (RFC 3261 §18.3) ---
    body_start = end + 4
    cl_text = first_of.get("content-length")
    if cl_text is None:
        if stream:
            raise SipParseError("missing Content-Length on a stream transport", fail)
        msg.body = data[body_start:]
    else:
        if _DIGITS_RE.fullmatch(cl_text) is None:
            raise SipParseError("bad Content-Length", fail)
        length = int(cl_text)
        available = len(data) - body_start
        if length > available:
            raise SipParseError("body shorter than Content-Length", fail)
        # Extra octets after the body in a datagram are discarded (§3.1.1.8 "dblreq").
        msg.body = data[body_start : body_start + length] if length != available else (
            data[body_start:]
        )
    return msg


def _unfold(lines: list[str], fail: int) -> list[str]:
    """Header lines with continuation lines (leading SP/HTAB) joined by one SP."""
    out: list[str] = []
    for line in lines[1:]:
        c0 = line[:1]
        if c0 == " " or c0 == "\t":
            if not out:
                raise SipParseError("continuation line before any header", fail)
            prev = out[-1].rstrip(" \t")
            cont = line.strip(" \t")
            out[-1] = f"{prev} {cont}" if prev[-1:] != ":" else f"{prev}{cont}"
            continue
        out.append(line)
    return out


def _status_for_garbage(data: bytes, start: int) -> int:
    # Without a header/body boundary we cannot trust anything; answer only if it at
    # least looks like a request line (so the sender learns it is broken), else drop.
    head = data[start : start + 8]
    return 0 if head.startswith(b"SIP/") or not head[:1].isalpha() else 400


def _parse_status_line(msg: SipMessage, line: str) -> None:
    parts = line.split(" ", 2)
    if len(parts) < 2 or parts[0] != SIP_VERSION:
        raise SipParseError("bad status line", 0)
    code = parts[1]
    # Status-Code = 3DIGIT; §3.1.2.19 "bigcode" sends 4294967301.
    if len(code) != 3 or not code.isdigit() or not 100 <= int(code) <= 699:
        raise SipParseError("bad status code", 0)
    msg.status = int(code)
    msg.reason = parts[2] if len(parts) == 3 else ""


def _parse_request_line(msg: SipMessage, line: str) -> None:
    parts = line.split(" ")
    # Exactly single SPs, nothing trailing (§3.1.2.8–10 lwsruri, lwsstart, trws).
    if len(parts) != 3 or not all(parts):
        raise SipParseError("bad request line")
    method, uri, version = parts
    if version != SIP_VERSION:
        if _VERSION_RE.fullmatch(version) and version.upper() != SIP_VERSION:
            raise SipParseError("Version Not Supported", 505)
        if version.upper() != SIP_VERSION:
            raise SipParseError("bad SIP version")
    if _TOKEN_RE.fullmatch(method) is None:
        raise SipParseError("bad method")
    if "<" in uri or ">" in uri:
        raise SipParseError("Request-URI in <>")  # §3.1.2.7 ltgtruri
    try:
        parsed = SipUri.parse(uri)
    except UriError:
        raise SipParseError("bad Request-URI") from None
    if parsed.scheme not in SUPPORTED_SCHEMES:
        raise SipParseError("Unsupported URI Scheme", 416)
    if parsed.headers is not None:
        # §3.1.2.11 escruri: headers are not allowed in a Request-URI.
        raise SipParseError("headers in Request-URI")
    msg.method = method
    msg.uri = uri
    msg._cache["ruri"] = parsed


# --- responses ------------------------------------------------------------------------
def make_response(
    request: SipMessage,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> SipMessage:
    """A response to `request` per RFC 3261 §8.2.6.2: Via (all, in order), From, To
    (with `to_tag` added unless the To already has a tag), Call-ID and CSeq copied.
    Dialog-forming responses must also get Record-Route/Contact: pass them in
    `headers` (the dialog layer knows when)."""
    src = request.headers
    h = Headers()
    items = h._items
    for value in src.get_all("Via"):
        items.append(("via", "Via", value))
    items.append(("from", "From", src.get("From") or ""))
    to_value = src.get("To") or ""
    if to_tag and request.to.tag is None:
        to_value = f"{to_value};tag={to_tag}"
    items.append(("to", "To", to_value))
    items.append(("call-id", "Call-ID", src.get("Call-ID") or ""))
    items.append(("cseq", "CSeq", src.get("CSeq") or ""))
    h.version += 1
    for name, value in headers or ():
        h.add(name, value)
    return SipMessage(
        status=status,
        reason=reason if reason is not None else REASON_PHRASES.get(status, ""),
        headers=h,
        body=body,
    )


_ERROR_COPY = {"via": "Via", "from": "From", "to": "To", "call-id": "Call-ID", "cseq": "CSeq"}


def build_error_response(data: bytes, error: SipParseError) -> bytes | None:
    """Best-effort error response for a request that failed to parse.

    Returns None (drop) when the error says so, when the input is a response, or when
    Via, From, To, Call-ID and CSeq cannot all be found — without them no response can
    be matched by the sender (RFC 3261 §8.1.3.3). The values are copied verbatim, even
    if they are the malformed part: the sender needs its own values back to match.
    """
    if error.status == 0:
        return None
    text = data.decode("utf-8", "surrogateescape")
    head = text.split("\r\n\r\n", 1)[0].lstrip("\r\n")
    if head.startswith("SIP/"):
        return None
    found: dict[str, list[str]] = {k: [] for k in _ERROR_COPY}
    last: str | None = None
    for line in head.split("\r\n")[1:]:
        if line[:1] in (" ", "\t") and last is not None:
            found[last][-1] += " " + line.strip()
            continue
        name, sep, value = line.partition(":")
        if not sep:
            last = None
            continue
        key = canonical_name(name.strip()).lower()
        if key in found:
            found[key].append(value.strip())
            last = key
        else:
            last = None
    if not all(found.values()):
        return None
    to_value = found["to"][0]
    try:
        if NameAddr.parse(to_value).tag is None:
            to_value += f";tag={new_tag()}"
    except UriError:
        pass  # malformed To: echo it untouched
    reason = "".join(ch if " " <= ch <= "~" else "?" for ch in error.reason)[:100]
    reason = reason or REASON_PHRASES.get(error.status, "Error")
    lines = [f"{SIP_VERSION} {error.status} {reason}"]
    lines += [f"Via: {v}" for v in found["via"]]
    lines += [
        f"From: {found['from'][0]}",
        f"To: {to_value}",
        f"Call-ID: {found['call-id'][0]}",
        f"CSeq: {found['cseq'][0]}",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode("utf-8", "surrogateescape")
