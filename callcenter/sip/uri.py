"""SIP URIs and name-addr values (RFC 3261 §19.1, §25.1), parsed strictly.

`SipUri` covers ``sip:`` and ``sips:`` fully. Any other scheme (``tel:``, ``im:``, or one
nobody has heard of) is kept as an *opaque* URI: RFC 3261 lets such URIs appear in
From/To/Contact (RFC 4475 §3.3.4 "unksm2" must be accepted), so we carry them without
interpreting them. Whether a Request-URI scheme is acceptable is decided by the message
layer (416), not here.

Parsing raises `UriError` (a `ValueError`); the message layer turns it into a 400.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

__all__ = [
    "NameAddr",
    "SipUri",
    "UriError",
    "format_params",
    "parse_params",
    "split_top_level",
    "unquote_string",
]


class UriError(ValueError):
    """A URI, name-addr or parameter list does not match the RFC 3261 grammar."""


# --- character classes from RFC 3261 §25.1 -------------------------------------------
_ESC = r"%[0-9A-Fa-f]{2}"
_UNRESERVED = r"A-Za-z0-9\-_.!~*'()"
_USER_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,;?/]|{_ESC})+")
_PASSWORD_RE = re.compile(rf"(?:[{_UNRESERVED}&=+$,]|{_ESC})*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*\.?")
_PORT_RE = re.compile(r"[0-9]{1,5}")
_PARAMCHAR_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/:&+$]|{_ESC})+")
_HNV_RE = re.compile(rf"(?:[{_UNRESERVED}\[\]/?:+$]|{_ESC})*")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+\-.]*")
# absoluteURI's opaque/hier part: uric characters (RFC 2396) — no whitespace, quotes, <>.
_OPAQUE_RE = re.compile(r"(?:[A-Za-z0-9\-_.!~*'();/?:@&=+$,\[\]]|%[0-9A-Fa-f]{2})+")
TOKEN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-.!%*_+`'~")
_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")
# gen-value = token / host / quoted-string; host may be an IPv6 reference.
_GENVALUE_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~:\[\]]+")


def is_token(text: str) -> bool:
    return _TOKEN_RE.fullmatch(text) is not None


def validate_host(host: str) -> str:
    """Return the host if it is a hostname, IPv4 address or bracketed IPv6 reference."""
    if host.startswith("["):
        if not host.endswith("]"):
            raise UriError(f"bad IPv6 reference {host!r}")
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError as exc:
            raise UriError(f"bad IPv6 reference {host!r}") from exc
        return host
    if _HOSTNAME_RE.fullmatch(host) is None:
        raise UriError(f"bad host {host!r}")
    return host


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` where host may be ``[v6]``; validates both."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UriError(f"bad IPv6 reference in {text!r}")
        host, rest = text[: end + 1], text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise UriError(f"junk after host in {text!r}")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
    validate_host(host)
    port: int | None = None
    if port_text is not None:
        if _PORT_RE.fullmatch(port_text) is None or int(port_text) > 65535:
            raise UriError(f"bad port in {text!r}")
        port = int(port_text)
    return host, port


def split_top_level(value: str, sep: str = ",") -> list[str]:
    """Split on `sep` outside quoted strings and <...>; raises on an unterminated quote.

    This is how RFC 3261 §7.3.1 multi-value header lines are separated: a comma inside
    a quoted display name or inside an angle-bracketed URI does not separate values.
    """
    if '"' not in value and "<" not in value:
        return value.split(sep)
    parts: list[str] = []
    start = 0
    in_quote = False
    in_angle = False
    i = 0
    n = len(value)
    while i < n:
        ch = value[i]
        if in_quote:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_quote = False
        elif ch == '"':
            in_quote = True
        elif in_angle:
            if ch == ">":
                in_angle = False
        elif ch == "<":
            in_angle = True
        elif ch == sep:
            parts.append(value[start:i])
            start = i + 1
        i += 1
    if in_quote:
        raise UriError("unterminated quoted string")
    if in_angle:
        raise UriError("unterminated <")
    parts.append(value[start:])
    return parts


def unquote_string(text: str) -> str:
    """Body of a quoted-string (without the surrounding quotes), quoted-pairs resolved."""
    if "\\" not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            i += 1
            if i >= len(text):
                raise UriError("dangling backslash in quoted string")
            ch = text[i]
        out.append(ch)
        i += 1
    return "".join(out)


def _read_quoted(text: str, start: int) -> int:
    """Index just past the closing quote of the quoted-string opening at `start`."""
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            if i + 1 >= n or text[i + 1] in "\r\n":
                raise UriError("bad quoted-pair")
            i += 2
            continue
        if ch == '"':
            return i + 1
        if ch in "\r\n":
            raise UriError("line break in quoted string")
        i += 1
    raise UriError("unterminated quoted string")


def parse_params(text: str) -> dict[str, str | None]:
    """Parse ``;name[=value]`` repeated (header parameters: generic-param).

    `text` starts at the first ``;`` (or is empty). Names are lower-cased (they are
    case-insensitive); values are kept verbatim, quoted values keep their quotes so the
    header can be written back unchanged. An empty parameter (``;;``) is a syntax error
    (RFC 4475 §3.1.2.1 "badinv01").
    """
    params: dict[str, str | None] = {}
    i = 0
    n = len(text)
    while i < n:
        # SEMI = SWS ";" SWS
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if text[i] != ";":
            raise UriError(f"expected ';' in parameters {text!r}")
        i += 1
        while i < n and text[i] in " \t":
            i += 1
        j = i
        while j < n and text[j] in TOKEN_CHARS:
            j += 1
        if j == i:
            raise UriError(f"empty parameter name in {text!r}")
        name = text[i:j].lower()
        i = j
        while i < n and text[i] in " \t":
            i += 1
        value: str | None = None
        if i < n and text[i] == "=":
            i += 1
            while i < n and text[i] in " \t":
                i += 1
            if i < n and text[i] == '"':
                end = _read_quoted(text, i)
                value = text[i:end]
                i = end
            else:
                j = i
                while j < n and text[j] not in " \t;":
                    j += 1
                value = text[i:j]
                if _GENVALUE_RE.fullmatch(value) is None:
                    raise UriError(f"bad value for parameter {name!r}: {value!r}")
                i = j
        params[name] = value
    return params


def format_params(params: dict[str, str | None]) -> str:
    return "".join(f";{k}" if v is None else f";{k}={v}" for k, v in params.items())


@dataclass(slots=True)
class SipUri:
    """A SIP/SIPS URI, or an opaque URI of another scheme (then only `scheme`/`opaque`).

    `params` are URI parameters (``;transport=tcp;lr``), names lower-cased, values
    verbatim (still %-escaped). `headers` are the ``?name=value&...`` part, verbatim.
    """

    scheme: str = "sip"
    user: str | None = None
    password: str | None = None
    host: str = ""
    port: int | None = None
    params: dict[str, str | None] = field(default_factory=dict)
    headers: str | None = None
    opaque: str | None = None  # everything after "scheme:" for non-SIP schemes

    @property
    def is_sip(self) -> bool:
        return self.opaque is None

    @property
    def transport(self) -> str | None:
        value = self.params.get("transport")
        return value.lower() if value else None

    @property
    def hostport(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, text: str) -> SipUri:
        colon = text.find(":")
        if colon <= 0:
            raise UriError(f"URI without scheme: {text!r}")
        scheme = text[:colon].lower()
        rest = text[colon + 1 :]
        if scheme not in ("sip", "sips"):
            if _SCHEME_RE.fullmatch(scheme) is None or _OPAQUE_RE.fullmatch(rest) is None:
                raise UriError(f"bad URI {text!r}")
            return cls(scheme=scheme, opaque=rest)
        headers: str | None = None
        user: str | None = None
        password: str | None = None
        at = rest.find("@")
        if at >= 0:
            userinfo, rest = rest[:at], rest[at + 1 :]
            user_text, sep, pw = userinfo.partition(":")
            if _USER_RE.fullmatch(user_text) is None:
                raise UriError(f"bad user part in {text!r}")
            user = user_text
            if sep:
                if _PASSWORD_RE.fullmatch(pw) is None:
                    raise UriError(f"bad password in {text!r}")
                password = pw
        q = rest.find("?")
        if q >= 0:
            rest, headers = rest[:q], rest[q + 1 :]
            for item in headers.split("&"):
                hname, sep, hvalue = item.partition("=")
                if not hname or not sep or _HNV_RE.fullmatch(hname) is None:
                    raise UriError(f"bad URI header in {text!r}")
                if _HNV_RE.fullmatch(hvalue) is None:
                    raise UriError(f"bad URI header in {text!r}")
        semi = rest.find(";")
        params: dict[str, str | None] = {}
        if semi >= 0:
            param_text, rest = rest[semi + 1 :], rest[:semi]
            for item in param_text.split(";"):
                pname, sep, pvalue = item.partition("=")
                if _PARAMCHAR_RE.fullmatch(pname) is None:
                    raise UriError(f"bad URI parameter in {text!r}")
                if sep and _PARAMCHAR_RE.fullmatch(pvalue) is None:
                    raise UriError(f"bad URI parameter in {text!r}")
                params[pname.lower()] = pvalue if sep else None
        host, port = split_hostport(rest)
        return cls(scheme, user, password, host, port, params, headers)

    def __str__(self) -> str:
        if self.opaque is not None:
            return f"{self.scheme}:{self.opaque}"
        out = [self.scheme, ":"]
        if self.user is not None:
            out.append(self.user)
            if self.password is not None:
                out.append(":" + self.password)
            out.append("@")
        out.append(self.hostport)
        if self.params:
            out.append(format_params(self.params))
        if self.headers is not None:
            out.append("?" + self.headers)
        return "".join(out)


@dataclass(slots=True)
class NameAddr:
    """``[display] <uri>;params`` or ``uri;params`` (From, To, Contact, Route, Refer-To…)."""

    uri: SipUri
    display: str | None = None  # unquoted display name, None when absent
    params: dict[str, str | None] = field(default_factory=dict)

    @property
    def tag(self) -> str | None:
        return self.params.get("tag")

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        text = text.strip(" \t")
        if not text:
            raise UriError("empty name-addr")
        display: str | None = None
        if text[0] == '"':
            end = _read_quoted(text, 0)
            display = unquote_string(text[1 : end - 1])
            rest = text[end:].lstrip(" \t")
            if not rest.startswith("<"):
                raise UriError(f"quoted display name without <uri>: {text!r}")
        else:
            lt = text.find("<")
            if lt >= 0:
                words = text[:lt].split()
                # display-name = *(token LWS): RFC 4475 §3.1.2.15 "baddn" has a comma here.
                for word in words:
                    if not is_token(word):
                        raise UriError(f"display name needs quotes: {text[:lt]!r}")
                display = " ".join(words) if words else None
                rest = text[lt:]
            else:
                rest = text
        if rest.startswith("<"):
            gt = rest.find(">")
            if gt < 0:
                raise UriError(f"unterminated <: {text!r}")
            uri_text = rest[1:gt]
            # LAQUOT/RAQUOT allow no whitespace inside: §3.1.2.14 "badaspec".
            uri = SipUri.parse(uri_text)
            param_text = rest[gt + 1 :]
        else:
            semi = rest.find(";")
            uri_text = rest if semi < 0 else rest[:semi]
            param_text = "" if semi < 0 else rest[semi:]
            uri_text = uri_text.rstrip(" \t")
            # RFC 3261 §20: a bare addr-spec cannot carry ?headers, commas or spaces
            # (§3.1.2.13 "regbadct").
            if "?" in uri_text or "," in uri_text or " " in uri_text or "\t" in uri_text:
                raise UriError(f"URI must be enclosed in <>: {text!r}")
            uri = SipUri.parse(uri_text)
        params = parse_params(param_text) if param_text else {}
        return cls(uri, display, params)

    def __str__(self) -> str:
        disp = ""
        if self.display:
            escaped = self.display.replace("\\", "\\\\").replace('"', '\\"')
            disp = f'"{escaped}" '
        return f"{disp}<{self.uri}>{format_params(self.params)}"
