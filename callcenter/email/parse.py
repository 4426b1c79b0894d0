"""Reading a raw message with the standard library's ``email`` package (policy default).

Nothing here raises on bad input: a header that does not parse, a charset Python does
not know, a broken MIME structure or undecodable bytes are read as far as they go and
named in ``flags`` (kept on the record), never a reason to drop the message.

HTML is rendered to plain text for the desk (block elements become line breaks, scripts
and styles are dropped): the desk shows it with ``textContent``, never as markup.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import html
import re
import uuid
from dataclasses import dataclass, field
from email.headerregistry import BaseHeader, HeaderRegistry
from email.message import EmailMessage, Message
from html.parser import HTMLParser
from typing import Any

from crm_bridge.addresses import normalize_email

MAX_TEXT = 200_000  # characters of body text kept on the record; the raw message has it all
_MSGID_RE = re.compile(r"<([^<>\s]+)>")
_TOKEN_RE = re.compile(r"\[#([A-Za-z0-9_-]{6,64})\]")


class MemoHeaders(HeaderRegistry):
    """The default header registry, remembering what it parsed. With ``policy.default``
    every ``msg.get`` parses the header again, and the stdlib asks for Content-Type eight
    times per part (content type, charset, walk, disposition): 13 header parses for a
    plain 6-header message, over half of ``parse``'s time. Header objects are read-only
    ``str`` subclasses (folding reads the parse tree, never changes it), so one parse serves
    every fetch, and messages alike (the same Content-Type; outbound.py's acknowledgements).
    A parsed header weighs ~5-20 KB (its parse tree, and a class the stdlib makes per
    header object), so the memo is small — it serves the repeats within a message and the
    few values messages share — and long values are not kept."""

    MAX_ENTRIES = 128
    MAX_VALUE = 256

    def __init__(self) -> None:
        super().__init__()
        self._memo: dict[tuple[str, str], BaseHeader] = {}

    def __call__(self, name: str, value: str) -> BaseHeader:
        if len(value) > self.MAX_VALUE:
            return super().__call__(name, value)  # type: ignore[no-any-return]
        key = (name, value)
        header = self._memo.get(key)
        if header is None:
            if len(self._memo) >= self.MAX_ENTRIES:
                self._memo.clear()
            header = self._memo[key] = super().__call__(name, value)
        return header


_POLICY = email.policy.default.clone(header_factory=MemoHeaders())

# A long run of base64 lines — an attachment's body — is where the stdlib parser spends its
# time: it reads a body line by line in Python (18,000 lines for 1 MB, ~30 ms). Such a run
# cannot hold a boundary ("--…") or a header (":"), so it is cut out before parsing (one
# line of base64 characters stands in for it: the structure parsed is the same) and put back
# in the payload that holds the stand-in. A C regex finds the runs in a few milliseconds.
_B64_RUN = re.compile(rb"(?m)^(?:[A-Za-z0-9+/=]{40,998}(?:\r\n|\n)){800,}")
SHRINK_FROM = 64 * 1024  # smaller messages are parsed as they are


def _shrink(raw: bytes) -> tuple[bytes, str, dict[str, str]]:
    """``raw`` with each long base64 run replaced by a stand-in line; the stand-ins' common
    prefix (random: never in a message) and stand-in → run (without its last line end,
    which precedes a boundary and is not part of the payload then)."""
    if len(raw) < SHRINK_FROM:
        return raw, "", {}
    nonce = uuid.uuid4().hex
    runs: dict[str, str] = {}
    out: list[bytes] = []
    pos = 0
    for m in _B64_RUN.finditer(raw):
        run = m.group()
        eol = b"\r\n" if run.endswith(b"\r\n") else b"\n"
        token = f"{nonce}{len(runs)}x"  # hex, digits and x: base64 characters
        runs[token] = run[: -len(eol)].decode("ascii")
        out += [raw[pos : m.start()], token.encode("ascii"), eol]
        pos = m.end()
    if not runs:
        return raw, "", {}
    out.append(raw[pos:])
    return b"".join(out), nonce, runs


def _restore(msg: Message, nonce: str, runs: dict[str, str]) -> None:
    def put_back(text: str) -> str:
        for token, run in runs.items():
            if token in text:
                text = text.replace(token, run)
        return text

    for part in msg.walk():
        for attr in ("preamble", "epilogue"):
            value = getattr(part, attr, None)
            if isinstance(value, str) and nonce in value:
                setattr(part, attr, put_back(value))
        payload = part.get_payload()
        if isinstance(payload, str) and nonce in payload:
            part.set_payload(put_back(payload))


@dataclass(slots=True)
class Attachment:
    name: str
    content_type: str
    data: bytes
    inline: bool = False


@dataclass(slots=True)
class ParsedEmail:
    message_id: str  # without the angle brackets; "" when missing
    in_reply_to: list[str]
    references: list[str]
    from_addr: str  # normalized, "" when unreadable
    from_display: str  # as written (name and address)
    to: list[str]
    cc: list[str]
    subject: str
    date: float | None
    text: str  # the text part, or the HTML rendered to text
    html_rendered: bool
    attachments: list[Attachment]
    junk: str  # why it must not be routed or answered ("" = a real person's mail)
    flags: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # a few, for the desk and the record

    def summary(self) -> dict[str, Any]:
        """What the record and the desk keep of it (attachments stored separately)."""
        return {
            "message_id": self.message_id,
            "in_reply_to": self.in_reply_to,
            "references": self.references,
            "from": self.from_addr,
            "from_display": self.from_display,
            "to": self.to,
            "cc": self.cc,
            "subject": self.subject,
            "date": self.date,
            "text": self.text,
            "html_rendered": self.html_rendered,
            "junk": self.junk,
            "flags": self.flags,
            "headers": self.headers,
        }


def message_ids(value: str | None) -> list[str]:
    """The ``<id>`` tokens of a Message-ID / In-Reply-To / References value, in order."""
    return _MSGID_RE.findall(value or "")


def case_token(subject: str) -> str | None:
    """The ``[#<interaction id>]`` token of a subject, if any (the last one wins)."""
    found = _TOKEN_RE.findall(subject or "")
    return found[-1] if found else None


class _TextOfHtml(HTMLParser):
    BLOCK = frozenset(
        {
            "p",
            "div",
            "br",
            "li",
            "tr",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
            "pre",
            "table",
            "ul",
            "ol",
            "hr",
            "section",
            "article",
            "header",
            "footer",
        }
    )
    SKIP = frozenset({"script", "style", "head", "title", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.BLOCK:
            self.out.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.out.append(data)


def html_to_text(markup: str) -> str:
    """Readable text of an HTML body: tags gone, entities decoded, blank runs collapsed."""
    parser = _TextOfHtml()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.out)
    except Exception:  # HTMLParser is lenient, but never let a body stop the message
        text = html.unescape(re.sub(r"<[^>]*>", " ", markup))
    lines = [re.sub(r"[ \t\r\f\v]+", " ", ln).strip() for ln in text.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def _header(msg: Message, name: str, flags: list[str]) -> str:
    try:
        value = msg.get(name)
        return "" if value is None else str(value)
    except Exception:  # a header the policy cannot parse: keep its raw form
        flags.append(f"bad_header:{name.lower()}")
        for key, value in msg.raw_items():
            if key.lower() == name.lower():
                return str(value).encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return ""


def _addresses(value: str, flags: list[str], what: str) -> list[tuple[str, str]]:
    pairs = email.utils.getaddresses([value]) if value else []
    out = []
    for name, addr in pairs:
        norm = normalize_email(addr)
        if norm is None:
            if addr:
                flags.append(f"bad_address:{what}")
            continue
        out.append((name, norm))
    return out


def _decode_part(part: Message, flags: list[str]) -> str:
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return str(part.get_payload() or "")
    charset = part.get_content_charset() or "us-ascii"
    try:
        return payload.decode(charset)
    except LookupError:
        flags.append(f"unknown_charset:{charset[:40]}")
    except UnicodeDecodeError:
        flags.append(f"bad_charset_bytes:{charset[:40]}")
    for fallback in ("utf-8", "cp1252"):
        try:
            return payload.decode(fallback)
        except UnicodeDecodeError:
            continue
    return payload.decode("latin-1")  # never fails: every byte is a character


def _junk(msg: Message, envelope_from: str | None, from_addr: str, ours: frozenset[str]) -> str:
    """Why this mail must be recorded only: auto-replies, bulk, bounces, our own (loops)."""
    auto = str(msg.get("Auto-Submitted", "") or "").strip().lower()
    if auto and auto != "no":
        return "auto_submitted"
    precedence = str(msg.get("Precedence", "") or "").strip().lower()
    if precedence in ("bulk", "junk", "list"):
        return f"precedence_{precedence}"
    if msg.get("X-Autoreply") is not None or msg.get("X-Autorespond") is not None:
        return "x_autoreply"
    if envelope_from is None:  # fetched from a mailbox: the delivering MTA wrote the envelope here
        return_path = msg.get("Return-Path")
        envelope_from = None if return_path is None else str(return_path)
    if envelope_from is not None and envelope_from.strip("<> ") == "":
        return "null_sender"
    if msg.get_content_type() == "multipart/report":
        return "dsn"
    if from_addr and from_addr in ours:
        return "own_address"
    return ""


def _message(raw: bytes) -> Message:
    try:
        shrunk, nonce, runs = _shrink(raw)
        msg: Message = email.message_from_bytes(shrunk, policy=_POLICY)
        if runs:
            _restore(msg, nonce, runs)
        return msg
    except Exception:  # never worse than the stdlib on its own
        return email.message_from_bytes(raw, policy=_POLICY)


def parse(raw: bytes, *, envelope_from: str | None = None, ours: frozenset[str] = frozenset()) -> ParsedEmail:
    """Parse ``raw``; never raises. ``envelope_from``: SMTP MAIL FROM ("" = null sender, a
    bounce); ``ours``: our mailbox addresses (mail from them is a loop)."""
    flags: list[str] = []
    try:
        msg: Message = _message(raw)
    except Exception:
        flags.append("unparseable")
        msg = EmailMessage()
    if not raw.strip():
        flags.append("empty")

    message_id = next(iter(message_ids(_header(msg, "Message-ID", flags))), "")
    if not message_id:
        flags.append("no_message_id")
    from_value = _header(msg, "From", flags)
    froms = _addresses(from_value, flags, "from")
    from_addr = froms[0][1] if froms else normalize_email(envelope_from or "") or ""
    if not froms:
        flags.append("no_from" if not from_value else "bad_from")
    subject = _header(msg, "Subject", flags)
    if not subject:
        flags.append("no_subject")
    date: float | None = None
    date_value = _header(msg, "Date", flags)
    if date_value:
        try:
            date = email.utils.parsedate_to_datetime(date_value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            flags.append("bad_date")

    text_parts: list[str] = []
    html_parts: list[str] = []
    attachments: list[Attachment] = []
    try:
        parts = list(msg.walk())
    except Exception:
        flags.append("mime_walk_failed")
        parts = [msg]
    for part in parts:
        for defect in getattr(part, "defects", []):
            flags.append(f"mime:{type(defect).__name__}")
        try:
            if part.is_multipart() and isinstance(part.get_payload(), list):
                continue
            ctype = part.get_content_type()
            if ctype.startswith("multipart/"):  # no boundary to split on: its body is all we have
                text_parts.append(str(part.get_payload() or ""))
                continue
            disposition = (part.get_content_disposition() or "").lower()
            filename = part.get_filename()
            if disposition == "attachment" or filename or not ctype.startswith("text/"):
                data = part.get_payload(decode=True)
                if not isinstance(data, bytes):
                    data = str(part.get_payload() or "").encode("utf-8", "replace")
                if ctype == "message/rfc822" and not data:
                    data = part.as_bytes() if hasattr(part, "as_bytes") else b""
                attachments.append(
                    Attachment(
                        str(filename or f"part-{len(attachments) + 1}"),
                        ctype,
                        data,
                        inline=disposition == "inline",
                    )
                )
            elif ctype == "text/html":
                html_parts.append(_decode_part(part, flags))
            else:
                text_parts.append(_decode_part(part, flags))
        except Exception as exc:  # one bad part costs that part, not the message
            flags.append(f"bad_part:{type(exc).__name__}")
    html_rendered = not text_parts and bool(html_parts)
    text = (
        "\n\n".join(t.strip("\n") for t in text_parts) if text_parts else html_to_text("\n".join(html_parts))
    )
    if len(text) > MAX_TEXT:
        flags.append("text_truncated")
        text = text[:MAX_TEXT]
    headers = {
        k: v for k in ("Auto-Submitted", "Precedence", "List-Id", "Reply-To") if (v := _header(msg, k, flags))
    }
    return ParsedEmail(
        message_id=message_id,
        in_reply_to=message_ids(_header(msg, "In-Reply-To", flags)),
        references=message_ids(_header(msg, "References", flags)),
        from_addr=from_addr,
        from_display=from_value,
        to=[a for _n, a in _addresses(_header(msg, "To", flags), flags, "to")],
        cc=[a for _n, a in _addresses(_header(msg, "Cc", flags), flags, "cc")],
        subject=subject,
        date=date,
        text=text,
        html_rendered=html_rendered,
        attachments=attachments,
        junk=_junk(msg, envelope_from, from_addr, ours),
        flags=list(dict.fromkeys(flags)),
        headers=headers,
    )
