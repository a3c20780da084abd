"""Checks of text and messages made from hostile input, written from the standards rather
than from the code under test: Unicode character properties, RFC 5322 header syntax, and
the email library's own parsers."""

from __future__ import annotations

import re
import unicodedata
from email import message_from_bytes
from email import policy as email_policy
from email.header import decode_header
from email.message import EmailMessage

from hypothesis import strategies as st

#: Any code point, lone surrogates too (which Hypothesis leaves out unless asked).
ANY_CHARACTER = st.characters(exclude_categories=())
#: Characters that change the display order of the text around them (Unicode UAX #9).
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: Unicode categories no line of text may hold: controls, surrogates, line and paragraph
#: separators.
FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
# RFC 5322 2.2: a field name is printable ASCII but the colon; continuation lines start with
# white space.
_FIELD = re.compile(rb"[!-9;-~]+:")
_CONTINUATION = re.compile(rb"[ \t]")


def is_noncharacter(char: str) -> bool:
    code = ord(char)
    return 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE


def assert_safe_line(text: str, where: str = "") -> None:
    """``text`` is one line of valid, printable Unicode: what ``safe_line`` promises."""
    assert text == text.strip(), f"{where}: {text!r} has white space at an end"
    for char in text:
        assert unicodedata.category(char) not in FORBIDDEN_CATEGORIES, f"{where}: {text!r}"
        assert char not in BIDI_CONTROLS, f"{where}: {text!r}"
        assert not is_noncharacter(char), f"{where}: {text!r}"
        assert char == " " or not char.isspace(), f"{where}: {text!r}"
    assert "  " not in text, f"{where}: {text!r}"


def header_block(raw: bytes) -> list[bytes]:
    """The physical lines of the message's header, up to the empty line."""
    head, separator, _ = raw.partition(b"\r\n\r\n")
    assert separator, "no end of header"
    return head.split(b"\r\n")


def header_names(raw: bytes) -> list[str]:
    """The names of the headers, in order, as a receiver splits them."""
    return [line.split(b":", 1)[0].decode() for line in header_block(raw) if _FIELD.match(line)]


def raw_header(raw: bytes, name: str) -> bytes:
    """The value of header ``name`` as it was written, its folding undone (RFC 5322 2.2.3)."""
    lines = header_block(raw)
    for index, line in enumerate(lines):
        if line.lower().startswith(name.lower().encode() + b":"):
            value = line.split(b":", 1)[1]
            for continuation in lines[index + 1 :]:
                if not _CONTINUATION.match(continuation):
                    break
                value += continuation
            return value.strip()
    raise AssertionError(f"no {name} header")


def assert_sound_headers(raw: bytes) -> EmailMessage:
    """Every header line is a field or a continuation in ASCII, and both of the email
    library's parsers read every header without a defect, to a safe line of text."""
    for line in header_block(raw):
        assert line.isascii(), line
        assert b"\r" not in line and b"\n" not in line, line
        assert _FIELD.match(line) or _CONTINUATION.match(line), line
    legacy = message_from_bytes(raw, policy=email_policy.compat32)
    assert not legacy.defects, legacy.defects
    for value in legacy.values():
        for text, charset in decode_header(value):
            if isinstance(text, bytes):
                text.decode(charset or "ascii")  # raises if the header lies about its charset
    message = message_from_bytes(raw, policy=email_policy.strict)
    assert isinstance(message, EmailMessage)
    assert not message.defects, message.defects
    for name, header in message.items():
        assert not header.defects, f"{name}: {header.defects}"
        assert_safe_line(str(header), name)
    return message
