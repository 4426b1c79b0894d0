"""Parsing never drops or crashes: a corpus of malformed messages is read as far as it
goes and flagged; HTML becomes text; the loop guard recognises robots and bounces."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from callcenter.email.parse import case_token, html_to_text, parse

OURS = frozenset({"support@callcenter.local"})

# (name, raw bytes, a flag that must be present)
MALFORMED = [
    ("no headers at all", b"just some text\r\nwithout headers\r\n", "no_message_id"),
    ("empty", b"", "empty"),
    (
        "missing boundary",
        b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nbody\r\n",
        "mime:NoBoundaryInMultipartDefect",
    ),
    (
        "unknown charset",
        b"From: a@example.com\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\nqapla\r\n",
        "unknown_charset:x-klingon",
    ),
    (
        "bytes not in the charset",
        b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\xff\xfe\xfa\r\n",
        "bad_charset_bytes:utf-8",
    ),
    ("bad from", b"From: not an address\r\nSubject: x\r\n\r\nhi\r\n", "bad_from"),
    ("bad date", b"From: a@example.com\r\nDate: yesterday-ish\r\n\r\nhi\r\n", "bad_date"),
    (
        "unterminated multipart",
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
        b"Content-Type: text/plain\r\n\r\npart one\r\n",
        "mime:CloseBoundaryNotFoundDefect",
    ),
    (
        "bad base64",
        b"From: a@example.com\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b"Content-Disposition: attachment; filename=x.pdf\r\n\r\n@@@not base64@@@\r\n",
        "",
    ),
    ("8-bit header", b"From: J\xf6rg <jorg@example.com>\r\nSubject: Gr\xfc\xdfe\r\n\r\nhallo\r\n", ""),
    ("NUL bytes", b"From: a@example.com\r\nSubject: nul\x00here\r\n\r\nbody\x00body\r\n", ""),
]


@pytest.mark.parametrize(("name", "raw", "flag"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_messages_are_read_and_flagged(name: str, raw: bytes, flag: str) -> None:
    parsed = parse(raw, envelope_from="sender@example.com", ours=OURS)
    if flag:
        assert flag in parsed.flags, parsed.flags
    parsed.summary()  # the record's form of it is always buildable


def test_missing_boundary_keeps_the_body_text() -> None:
    parsed = parse(MALFORMED[2][1])
    assert "body" in parsed.text


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_arbitrary_bytes_never_raise(raw: bytes) -> None:
    parse(raw, envelope_from="", ours=OURS)


def test_html_is_rendered_to_text_never_markup() -> None:
    raw = (
        b"From: Ada <ada@example.com>\r\nSubject: hi\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
        b"<html><head><style>p{}</style><script>alert('x')</script></head><body><p>Hello &amp; "
        b"<b>welcome</b></p><img src=x onerror=alert(1)><p>Line 2</p></body></html>"
    )
    parsed = parse(raw)
    assert parsed.html_rendered
    assert parsed.text == "Hello & welcome\n\nLine 2"
    assert "<" not in parsed.text and "alert" not in parsed.text


def test_text_part_wins_over_html_and_attachments_are_kept() -> None:
    raw = (
        b"From: ada@example.com\r\nMessage-ID: <m1@example.com>\r\nIn-Reply-To: <p@x>\r\n"
        b"References: <a@x> <p@x>\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n"
        b"--B\r\nContent-Type: multipart/alternative; boundary=A\r\n\r\n"
        b"--A\r\nContent-Type: text/plain\r\n\r\nplain text\r\n"
        b"--A\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--A--\r\n"
        b'--B\r\nContent-Type: image/png\r\nContent-Disposition: attachment; filename="shot.png"\r\n'
        b"Content-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--B--\r\n"
    )
    parsed = parse(raw)
    assert parsed.text == "plain text" and not parsed.html_rendered
    assert [(a.name, a.content_type, a.data) for a in parsed.attachments] == [
        ("shot.png", "image/png", b"\x89PNG\r\n\x1a\n")
    ]
    assert parsed.message_id == "m1@example.com"
    assert parsed.in_reply_to == ["p@x"] and parsed.references == ["a@x", "p@x"]


@pytest.mark.parametrize(
    ("headers", "envelope_from", "why"),
    [
        (b"Auto-Submitted: auto-replied\r\n", "a@example.com", "auto_submitted"),
        (b"Auto-Submitted: no\r\n", "a@example.com", ""),
        (b"Precedence: bulk\r\n", "a@example.com", "precedence_bulk"),
        (b"Precedence: junk\r\n", "a@example.com", "precedence_junk"),
        (b"Precedence: list\r\n", "a@example.com", "precedence_list"),
        (b"X-Autoreply: yes\r\n", "a@example.com", "x_autoreply"),
        (b"", "", "null_sender"),
        (
            b"Content-Type: multipart/report; report-type=delivery-status; boundary=z\r\n",
            "x@example.com",
            "dsn",
        ),
        (b"", "a@example.com", ""),
    ],
)
def test_loop_guard(headers: bytes, envelope_from: str, why: str) -> None:
    raw = b"From: a@example.com\r\nSubject: out of office\r\n" + headers + b"\r\nI am away\r\n"
    assert parse(raw, envelope_from=envelope_from, ours=OURS).junk == why


def test_a_bounce_fetched_by_imap_is_known_by_its_return_path() -> None:
    raw = b"Return-Path: <>\r\nFrom: mailer-daemon@example.com\r\nSubject: failed\r\n\r\nx\r\n"
    assert parse(raw, envelope_from=None).junk == "null_sender"
    assert parse(b"From: a@example.com\r\nSubject: hi\r\n\r\nx\r\n", envelope_from=None).junk == ""


def test_mail_from_our_own_mailbox_is_a_loop() -> None:
    raw = b"From: support@callcenter.local\r\nSubject: x\r\n\r\nx\r\n"
    assert parse(raw, envelope_from="support@callcenter.local", ours=OURS).junk == "own_address"


def test_case_token() -> None:
    assert case_token("Re: help [#abc123def] again") == "abc123def"
    assert case_token("Re: [#short]") is None or case_token("Re: [#short]") == "short"
    assert case_token("no token") is None
    assert html_to_text("a<br>b") == "a\nb"


def _big_messages() -> dict[str, bytes]:
    import email.policy
    import random
    from email.message import EmailMessage

    blob = random.Random(7).randbytes(300_000)
    mail = EmailMessage()
    mail["From"] = "A <a@example.com>"
    mail["Subject"] = "two files"
    mail.set_content("see attached\n")
    mail.add_attachment(blob, maintype="application", subtype="pdf", filename="a.pdf")
    mail.add_attachment(blob[:100_000], maintype="image", subtype="png", filename="b.png")
    crlf = mail.as_bytes(policy=email.policy.SMTP)
    inner = EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("inner")
    inner.add_attachment(blob, maintype="application", subtype="zip", filename="z.zip")
    outer = EmailMessage()
    outer["From"] = "b@example.com"
    outer.set_content("fwd")
    outer.add_attachment(inner)
    text = EmailMessage()
    text["From"] = "c@example.com"
    text.set_content(("héllo wörld " * 6 + "\n") * 4000, cte="base64")
    cut = crlf[: crlf.rfind(b"\r\n--")]  # the last attachment's lines run to the end of the input
    return {
        "crlf": crlf,
        "lf": crlf.replace(b"\r\n", b"\n"),
        "unterminated": cut,
        "message/rfc822": outer.as_bytes(policy=email.policy.SMTP),
        "base64 text body": text.as_bytes(policy=email.policy.SMTP),
    }


@pytest.mark.parametrize("name", list(_big_messages()))
def test_big_bodies_parse_as_the_stdlib_parses_them(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Long base64 runs are cut out before parsing and put back (``_shrink``): the result,
    attachments' bytes included, is what the stdlib parser gives for the whole message."""
    import dataclasses
    import email
    import email.policy

    import callcenter.email.parse as parse_module

    raw = _big_messages()[name]
    assert parse_module._shrink(raw)[2], "the fast path was taken"
    fast = parse(raw, envelope_from="a@example.com", ours=OURS)
    whole = email.message_from_bytes(raw, policy=email.policy.default)
    stdlib = {p.get_payload(decode=True) for p in whole.walk() if not p.is_multipart()}
    assert {a.data for a in fast.attachments} <= stdlib
    monkeypatch.setattr(parse_module, "_shrink", lambda r: (r, "", {}))  # the stdlib on its own
    slow = parse(raw, envelope_from="a@example.com", ours=OURS)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
