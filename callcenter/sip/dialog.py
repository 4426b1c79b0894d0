"""SIP dialog state (RFC 3261 section 12), for both the UAS and the UAC side.

A dialog is identified by Call-ID + local tag + remote tag. It carries the
local/remote CSeq, the remote target (Contact), and the route set taken from
Record-Route, and builds in-dialog requests (BYE, re-INVITE, INFO, NOTIFY,
REFER, ACK for 2xx). Loose routing (``;lr``) is assumed for the route set;
strict routers are obsolete and not supported.

It holds only strings and numbers — no references to calls, transactions or
sockets — so it can never be part of a reference cycle.
"""

from __future__ import annotations

import enum
import random

from callcenter.sip.message import SipMessage, SipUri
from callcenter.sip.transaction import MAGIC_COOKIE, new_request

_rand = random.SystemRandom()


def new_tag() -> str:
    """A From/To tag: 64 random bits, hex (RFC 3261 19.3 asks for 32 at least)."""
    return f"{_rand.getrandbits(64):016x}"


def new_branch() -> str:
    return f"{MAGIC_COOKIE}{_rand.getrandbits(80):020x}"


def new_call_id(host: str) -> str:
    return f"{_rand.getrandbits(96):024x}@{host}"


class DialogState(enum.Enum):
    EARLY = "early"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


def _with_tag(header_value: str, tag: str) -> str:
    return f"{header_value};tag={tag}"


def uri_address(uri: str, default_port: int = 5060) -> tuple[str, int]:
    """Where to send a request for ``uri`` (no DNS: the host must be an address or a name
    the resolver knows; maddr wins, as RFC 3261 8.1.2 says). Over TLS the default port
    is 5061 (RFC 3261 §19.1.2)."""
    parsed = SipUri.parse(uri.strip().strip("<>"))
    host = str(parsed.params.get("maddr") or parsed.host)
    port = parsed.port or (5061 if _transport_of(parsed) == "TLS" else default_port)
    return host.strip("[]"), int(port)


def uri_transport(uri: str) -> str:
    return _transport_of(SipUri.parse(uri.strip().strip("<>")))


def _transport_of(parsed: SipUri) -> str:
    """The transport a URI asks for: a ``sips:`` URI needs TLS on the hop (RFC 3261
    §26.2.2), as ``;transport=tls`` does; UDP when nothing is said."""
    if parsed.scheme == "sips":
        return "TLS"
    return str(parsed.params.get("transport") or "udp").upper()


def is_sips(uri: str) -> bool:
    return uri.strip().lstrip("<")[:5].lower() == "sips:"


class Dialog:
    """One dialog. ``local``/``remote`` are the full From/To header values with tags."""

    __slots__ = (
        "call_id",
        "local",
        "local_contact",
        "local_cseq",
        "local_tag",
        "remote",
        "remote_cseq",
        "remote_tag",
        "remote_target",
        "route_set",
        "state",
    )

    def __init__(
        self,
        *,
        call_id: str,
        local: str,
        local_tag: str,
        remote: str,
        remote_tag: str,
        remote_target: str,
        route_set: list[str],
        local_cseq: int,
        remote_cseq: int | None,
        local_contact: str,
        state: DialogState = DialogState.EARLY,
    ) -> None:
        self.call_id = call_id
        self.local = local
        self.local_tag = local_tag
        self.remote = remote
        self.remote_tag = remote_tag
        self.remote_target = remote_target
        self.route_set = route_set
        self.local_cseq = local_cseq
        self.remote_cseq = remote_cseq
        self.local_contact = local_contact
        self.state = state

    @property
    def id(self) -> tuple[str, str, str]:
        return (self.call_id, self.local_tag, self.remote_tag)

    # construction -----------------------------------------------------------

    @classmethod
    def as_uas(cls, request: SipMessage, local_tag: str, local_contact: str) -> Dialog:
        """RFC 3261 12.1.1: the dialog an incoming INVITE creates when we answer it."""
        contacts = request.contacts
        target = str(contacts[0].uri) if contacts and contacts != "*" else request.uri or ""
        return cls(
            call_id=request.call_id,
            local=_with_tag(_strip_tag(request.headers.get("To") or ""), local_tag),
            local_tag=local_tag,
            remote=request.headers.get("From") or "",
            remote_tag=str(request.from_.tag or ""),
            remote_target=target,
            route_set=_split_routes(request.headers.get_all("Record-Route")),
            local_cseq=_rand.randint(1, 2**20),
            remote_cseq=request.cseq[0],
            local_contact=local_contact,
        )

    @classmethod
    def as_uac(cls, request: SipMessage, response: SipMessage, local_contact: str) -> Dialog:
        """RFC 3261 12.1.2: the dialog a 1xx-with-tag or 2xx to our INVITE creates."""
        contacts = response.contacts
        target = str(contacts[0].uri) if contacts and contacts != "*" else request.uri or ""
        return cls(
            call_id=request.call_id,
            local=request.headers.get("From") or "",
            local_tag=str(request.from_.tag or ""),
            remote=response.headers.get("To") or "",
            remote_tag=str(response.to.tag or ""),
            remote_target=target,
            route_set=list(reversed(_split_routes(response.headers.get_all("Record-Route")))),
            local_cseq=request.cseq[0],
            remote_cseq=None,
            local_contact=local_contact,
            state=DialogState.CONFIRMED if 200 <= (response.status or 0) < 300 else DialogState.EARLY,
        )

    # in-dialog processing ---------------------------------------------------

    def accept_remote_cseq(self, request: SipMessage) -> bool:
        """RFC 3261 12.2.2: a lower CSeq than the last one is out of order (→ 500)."""
        num = request.cseq[0]
        if request.method in ("ACK", "CANCEL"):
            return True
        if self.remote_cseq is not None and num < self.remote_cseq:
            return False
        self.remote_cseq = num
        return True

    def refresh_target(self, msg: SipMessage) -> None:
        """Target refresh (re-INVITE, its 2xx, UPDATE): a new Contact replaces the target."""
        contacts = msg.contacts
        if contacts and contacts != "*":
            self.remote_target = str(contacts[0].uri)

    def next_hop(self) -> str:
        """The URI whose address a new in-dialog request goes to (first loose route or target)."""
        if self.route_set:
            return _route_uri(self.route_set[0])
        return self.remote_target

    def create_request(
        self,
        method: str,
        *,
        via: str,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        cseq: int | None = None,
    ) -> SipMessage:
        """Build an in-dialog request (RFC 3261 12.2.1.1). ``via`` is the sent-by part,
        e.g. ``"SIP/2.0/UDP 127.0.0.1:5060;rport"``; a fresh branch is appended.
        ACK reuses the INVITE's CSeq number (pass ``cseq``)."""
        if cseq is None:
            self.local_cseq += 1
            cseq = self.local_cseq
        items: list[tuple[str, str]] = [("Via", f"{via};branch={new_branch()}")]
        for route in self.route_set:
            items.append(("Route", route))
        items += [
            ("Max-Forwards", "70"),
            ("From", self.local),
            ("To", self.remote),
            ("Call-ID", self.call_id),
            ("CSeq", f"{cseq} {method}"),
        ]
        if method in ("INVITE", "REFER", "NOTIFY", "UPDATE", "SUBSCRIBE"):
            items.append(("Contact", f"<{self.local_contact}>"))
        if headers:
            items += headers
        return new_request(method, self.remote_target, items, body)


def _strip_tag(header_value: str) -> str:
    """The To header of an out-of-dialog request has no tag; be safe if it does."""
    lowered = header_value.lower()
    idx = lowered.find(";tag=")
    if idx < 0:
        return header_value
    end = header_value.find(";", idx + 1)
    return header_value[:idx] + (header_value[end:] if end >= 0 else "")


def _split_routes(values: list[str]) -> list[str]:
    """Record-Route values may hold several comma-separated entries; keep them in order."""
    routes: list[str] = []
    for value in values:
        depth = 0
        start = 0
        for i, ch in enumerate(value):
            if ch == "<":
                depth += 1
            elif ch == ">":
                depth -= 1
            elif ch == "," and depth == 0:
                routes.append(value[start:i].strip())
                start = i + 1
        tail = value[start:].strip()
        if tail:
            routes.append(tail)
    return routes


def _route_uri(route: str) -> str:
    if "<" in route:
        return route[route.index("<") + 1 : route.index(">")]
    return route.split(";", 1)[0].strip()
