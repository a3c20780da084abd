"""Header values that no input can spoil: one line each, never raising, never adding a header.

Whatever a feed, a configuration or a caller puts in a header (the subject is a feed's
headline), ``set_header`` writes it as exactly one header: the value is decoded as the email
library would decode it and made a ``safe_line``, and when the library cannot parse or write
it as the structured header it names (an address, a message id), it goes out as plain text.
The list headers of RFC 2369 and RFC 8058 are written raw, as mail clients read them.
"""

from __future__ import annotations

import re
from email.headerregistry import BaseHeader, HeaderRegistry, UnstructuredHeader
from email.message import EmailMessage
from email.policy import SMTP, Policy
from urllib.parse import quote

from .sanitize import safe_line


def one_line(text: str) -> str:
    """A header value that cannot raise, add a header line or decode to anything unsafe.

    The email library decodes RFC 2047 encoded words in every value it is given, so the value
    is decoded the same way first and the decoded text made a ``safe_line``: neither
    "=?utf-8?q?=0D=0A?=" (CVE-2024-6923) nor "=?utf-8?q?=E2=80=A8?=" (a line separator,
    which makes the library raise) survives. That is repeated while the text still decodes
    to something else (an encoded word inside an encoded word). Any "=?" left is then text,
    and becomes "= ?": a reader could take it, with an encoded word the library writes after
    it, for one encoded word, and fail to decode the header.
    """
    text = safe_line(text)  # first as well: the library's decoder raises on a lone surrogate
    for _ in range(_DECODINGS):
        decoded = safe_line(str(MAIL_POLICY.header_factory("X-Value", text)))
        if decoded == text:
            break
        text = decoded
    return text.replace("=?", "= ?")


_DECODINGS = 4


class _Header(BaseHeader):
    """The base of every header here: folded by the library, with two flaws mended.

    The library can end a folded line with a space before a continuation line, which starts
    with one too, so that two words of a subject stand two spaces apart; and it can fold right
    after the name, which readers take for a value that starts with a space. Neither fold
    changes the value: only the white space the library doubled goes.
    """

    def fold(self, *, policy: Policy) -> str:
        folded = super().fold(policy=policy)
        return _SPACE_BEFORE_FOLD.sub("", _FOLD_AFTER_NAME.sub(r"\1", folded, count=1))


# After something that is not white space (a line is never left empty), before a fold.
_SPACE_BEFORE_FOLD = re.compile(r"(?<=[^ \t\r\n])[ \t]+(?=\r?\n[ \t])")
_FOLD_AFTER_NAME = re.compile(r"\A([^:\r\n]+:)\r?\n(?=[ \t])")


class _UnencodedHeader(UnstructuredHeader, _Header):
    """A header of <URL> entries (RFC 2369) or a fixed token (RFC 8058), written as it is.

    Mail clients read these headers raw: RFC 2047 encoding, which the email library gives any
    unstructured line too long to fold at a space, hides the URLs and with them the
    unsubscribe button. So the value stays ASCII (any other character of a URL is
    percent-encoded, as in a URI) and is folded only between entries, after a comma.
    """

    def fold(self, *, policy: Policy) -> str:
        entries = [_ascii(entry) for entry in _BETWEEN_ENTRIES.split(str(self)) if entry]
        lines = [f"{self.name}:"]
        for index, entry in enumerate(entries):
            piece = entry + ("," if index < len(entries) - 1 else "")
            if index and len(lines[-1]) + 1 + len(piece) > (policy.max_line_length or 998):
                lines.append("")
            lines[-1] += " " + piece
        return policy.linesep.join(lines) + policy.linesep


# Entries are "<...>" separated by commas; a comma inside a URL is not a separator.
_BETWEEN_ENTRIES = re.compile(r"(?<=>)\s*,\s*(?=<)")
_PRINTABLE_ASCII = "".join(map(chr, range(0x21, 0x7F)))


def _ascii(entry: str) -> str:
    return quote(entry, safe=_PRINTABLE_ASCII)


def _header_factory() -> HeaderRegistry:
    registry = HeaderRegistry(base_class=_Header)
    for name in ("List-Unsubscribe", "List-Unsubscribe-Post"):
        registry.map_to_type(name, _UnencodedHeader)
    return registry


#: SMTP's policy (CRLF, lines of at most 78), with the list headers written unencoded.
MAIL_POLICY = SMTP.clone(header_factory=_header_factory())
#: How a message whose To header is not ASCII is written (RFC 6532).
UTF8_POLICY = MAIL_POLICY.clone(utf8=True)


def set_header(message: EmailMessage, name: str, value: str) -> None:
    """Add the header ``name``: ``value`` made ``one_line``, in a form the policy can write."""
    line = one_line(value)
    try:
        header = MAIL_POLICY.header_factory(name, line)
        # What as_bytes will do, in either policy a message may be written in.
        written = [policy.fold_binary(name, header) for policy in (MAIL_POLICY, UTF8_POLICY)]
    except Exception:
        # The library's parsers of addresses and message ids fail on some malformed values,
        # with anything from HeaderParseError to IndexError, when parsing or only when
        # writing. Such a value goes out as plain text: it cannot be a valid one anyway.
        written = [b""]
    # Its folder can also break a malformed address onto a line of its own: a new header.
    if not all(_FOLDED.fullmatch(each) for each in written):
        header = _PlainHeader(name, line)
    message[name] = header


# One header: its first line, then only continuation lines (which start with white space).
_FOLDED = re.compile(rb"[^\r\n]+\r\n(?:[ \t][^\r\n]*\r\n)*")


class _PlainHeader(UnstructuredHeader, _Header):
    """Any header written as unstructured text."""
