"""Header storage and the Via header (RFC 3261 §7.3, §20.42).

`Headers` is an ordered multi-dict with case-insensitive names in which compact forms
(``v`` → ``Via``, ``i`` → ``Call-ID`` …) are expanded on the way in, so every lookup
uses the long name. List-valued headers arrive already split into one entry per value
(the parser splits comma lists outside quotes and <>), so ``get_all("Via")`` is the
Via list whatever mix of lines and commas the peer used.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .uri import UriError, format_params, parse_params, split_hostport

__all__ = ["COMPACT_FORMS", "Headers", "Via", "canonical_name"]

# RFC 3261 §7.3.3 and later RFCs (3265, 3515, 3892, 4028, 3841, 4474).
COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "u": "Allow-Events",
    "r": "Refer-To",
    "b": "Referred-By",
    "x": "Session-Expires",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

_WELL_KNOWN = [
    "Accept", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow", "Allow-Events",
    "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "In-Reply-To",
    "Max-Forwards", "Min-Expires", "Min-SE", "MIME-Version", "Organization", "Path",
    "P-Asserted-Identity", "Priority", "Proxy-Authenticate", "Proxy-Authorization",
    "Proxy-Require", "RAck", "Reason", "Record-Route", "Refer-To", "Referred-By",
    "Reply-To", "Require", "Retry-After", "Route", "RSeq", "Server", "Service-Route",
    "Session-Expires", "Subject", "Subscription-State", "Supported", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]
_CANONICAL: dict[str, str] = {name.lower(): name for name in _WELL_KNOWN}
for _short, _long in COMPACT_FORMS.items():
    _CANONICAL[_short] = _long

# Headers whose grammar is a comma-separated list (RFC 3261 §7.3.1). Authorization and
# friends are NOT here: their commas separate auth-params inside one value. Neither are
# Date, Retry-After, Timestamp (commas or none inside a single value).
LIST_HEADERS = frozenset(
    name.lower()
    for name in (
        "Via", "Contact", "Route", "Record-Route", "Path", "Service-Route", "Allow",
        "Supported", "Require", "Proxy-Require", "Unsupported", "Accept",
        "Accept-Encoding", "Accept-Language", "Allow-Events", "Content-Encoding",
        "Content-Language", "In-Reply-To", "Alert-Info", "Call-Info", "Error-Info",
        "Warning", "Reply-To", "P-Asserted-Identity",
    )
)


def canonical_name(name: str) -> str:
    """Long, conventionally capitalised header name; unknown names keep their spelling."""
    return _CANONICAL.get(name.lower(), name)


class Headers:
    """Ordered, case-insensitive multi-dict of header fields.

    Stored as a list of ``(lower_name, name, value)`` — a SIP message has a dozen or so
    headers, where a linear scan beats maintaining an index.
    """

    __slots__ = ("_items", "version")

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str, str]] = []
        # Bumped on every change so SipMessage can drop its parsed views.
        self.version = 0
        for name, value in items:
            self.add(name, value)

    @staticmethod
    def _key(name: str) -> tuple[str, str]:
        canon = _CANONICAL.get(name.lower(), name)
        return canon.lower(), canon

    def get(self, name: str, default: str | None = None) -> str | None:
        key = self._key(name)[0]
        for k, _, v in self._items:
            if k == key:
                return v
        return default

    def get_all(self, name: str) -> list[str]:
        key = self._key(name)[0]
        return [v for k, _, v in self._items if k == key]

    def count(self, name: str) -> int:
        key = self._key(name)[0]
        return sum(1 for k, _, _ in self._items if k == key)

    def add(self, name: str, value: str) -> None:
        key, canon = self._key(name)
        self._items.append((key, canon, value))
        self.version += 1

    def insert(self, index: int, name: str, value: str) -> None:
        """Insert at a position among all headers (0 = first), e.g. a new top Via."""
        key, canon = self._key(name)
        self._items.insert(index, (key, canon, value))
        self.version += 1

    def prepend(self, name: str, value: str) -> None:
        """Put a value before the first existing value of `name` (or first of all)."""
        key, canon = self._key(name)
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items.insert(i, (key, canon, value))
                break
        else:
            self._items.insert(0, (key, canon, value))
        self.version += 1

    def set(self, name: str, value: str) -> None:
        """Replace all values of `name` by one, kept at the first one's position."""
        key, canon = self._key(name)
        new: list[tuple[str, str, str]] = []
        placed = False
        for item in self._items:
            if item[0] == key:
                if not placed:
                    new.append((key, canon, value))
                    placed = True
            else:
                new.append(item)
        if not placed:
            new.append((key, canon, value))
        self._items = new
        self.version += 1

    def set_first(self, name: str, value: str) -> None:
        """Replace only the first value of `name` (the top Via, say)."""
        key, canon = self._key(name)
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                self._items[i] = (key, canon, value)
                self.version += 1
                return
        raise KeyError(name)

    def remove(self, name: str) -> None:
        key = self._key(name)[0]
        self._items = [item for item in self._items if item[0] != key]
        self.version += 1

    def remove_first(self, name: str) -> None:
        key = self._key(name)[0]
        for i, (k, _, _) in enumerate(self._items):
            if k == key:
                del self._items[i]
                self.version += 1
                return

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = self._key(name)[0]
        return any(k == key for k, _, _ in self._items)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for _, name, value in self._items:
            yield name, value

    def items(self) -> list[tuple[str, str]]:
        return [(name, value) for _, name, value in self._items]

    def __len__(self) -> int:
        return len(self._items)

    def copy(self) -> Headers:
        new = Headers()
        new._items = list(self._items)
        return new

    def __repr__(self) -> str:
        return f"Headers({self.items()!r})"

    def _append_raw(self, key: str, canon: str, value: str) -> None:
        # Parser fast path: name already normalised.
        self._items.append((key, canon, value))


@dataclass(slots=True)
class Via:
    """One Via value: ``SIP/2.0/UDP host[:port];branch=…;received=…;rport[=n]``."""

    transport: str
    host: str
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    protocol: str = "SIP/2.0"

    @property
    def branch(self) -> str | None:
        return self.params.get("branch")

    @property
    def received(self) -> str | None:
        return self.params.get("received")

    @property
    def has_rport(self) -> bool:
        return "rport" in self.params

    @property
    def rport(self) -> int | None:
        """The rport value filled in by a server; None if absent or empty (asked for)."""
        value = self.params.get("rport")
        return int(value) if value else None

    @property
    def sent_by(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> Via:
        # sent-protocol = name SLASH version SLASH transport, LWS allowed around SLASH
        # (RFC 4475 §3.1.1.1 "wsinv" folds it over three lines).
        parts = text.split("/", 2)
        if len(parts) != 3:
            raise UriError(f"bad Via {text!r}")
        name, version = parts[0].strip(" \t"), parts[1].strip(" \t")
        rest = parts[2].lstrip(" \t")
        i = 0
        n = len(rest)
        while i < n and rest[i] not in " \t":
            i += 1
        transport = rest[:i]
        rest = rest[i:].lstrip(" \t")
        if not name or not version or not transport or not rest:
            raise UriError(f"bad Via {text!r}")
        if not (name + version).replace(".", "").isalnum() or not transport.replace(
            "-", ""
        ).isalnum():
            raise UriError(f"bad Via protocol {text!r}")
        semi = rest.find(";")
        sent_by = (rest if semi < 0 else rest[:semi]).strip(" \t")
        # HCOLON between host and port may carry whitespace: strip it.
        if ":" in sent_by and not sent_by.startswith("["):
            host_part, _, port_part = sent_by.partition(":")
            sent_by = host_part.rstrip(" \t") + ":" + port_part.lstrip(" \t")
        host, port = split_hostport(sent_by)
        params = parse_params(rest[semi:]) if semi >= 0 else {}
        for key in ("rport", "ttl"):
            value = params.get(key)
            if value is not None and (not value.isdigit() or int(value) > 65535):
                raise UriError(f"bad Via {key} {value!r}")
        return cls(transport.upper(), host, port, params, f"{name.upper()}/{version}")

    def __str__(self) -> str:
        return f"{self.protocol}/{self.transport} {self.sent_by}{format_params(self.params)}"
