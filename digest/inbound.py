"""What mail to the list's own addresses says: an unsubscribe, or bounce reports.

Every message goes out from the edition's From address (``LOCAL@DOMAIN``), which is also its
envelope sender, so a bounce comes back there; its List-Unsubscribe header names
``LOCAL+unsubscribe@DOMAIN`` with the subject "unsubscribe TOKEN". ``Mailboxes`` says which
addresses those are, ``read_unsubscribe`` finds the token in such a message and
``read_bounces`` the recipients of a delivery status notification (RFC 3464). Pure: these
read ``email.message`` objects and change nothing; ``digest.receive`` applies them.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage, Message
from email.parser import HeaderParser
from email.policy import default as default_policy
from email.utils import collapse_rfc2231_value, parseaddr
from urllib.parse import unquote

from .addresses import address_key
from .sanitize import safe_line


class Role(enum.Enum):
    """What mail to one of the list's addresses is for."""

    #: The From address and its ``+bounces`` variant: bounce reports come back here.
    BOUNCES = "bounces"
    #: ``+unsubscribe``: the ``mailto:`` of the List-Unsubscribe header.
    UNSUBSCRIBE = "unsubscribe"


@dataclass(frozen=True, slots=True)
class Mailboxes:
    """The list's own addresses, made from the edition's From address."""

    local: str
    domain: str

    @property
    def sender(self) -> str:
        return f"{self.local}@{self.domain}"

    @property
    def bounces(self) -> str:
        return f"{self.local}+bounces@{self.domain}"

    @property
    def unsubscribe(self) -> str:
        return f"{self.local}+unsubscribe@{self.domain}"

    def role(self, address: str) -> Role | None:
        """What mail to ``address`` is for; None: not one of the list's addresses."""
        key = address_key(address)
        if key in (address_key(self.sender), address_key(self.bounces)):
            return Role.BOUNCES
        if key == address_key(self.unsubscribe):
            return Role.UNSUBSCRIBE
        return None

    def is_our_domain(self, address: str) -> bool:
        """Whether ``address`` is at the list's domain (whichever mailbox it names)."""
        return domain_of(address) == domain_of(self.sender)


def domain_of(address: str) -> str:
    return address_key(address).rpartition("@")[2]


def mailboxes_of(sender: str) -> Mailboxes:
    """The list's addresses for the From address ``sender`` ("Name <local@domain>")."""
    local, _, domain = parseaddr(sender)[1].rpartition("@")
    return Mailboxes(local, domain)


# Reply and forward prefixes as mail clients write them in a few languages (Re, Fwd, Fw;
# German AW/WG, Nordic SV, French TR, Dutch Antw), with a counter such as "Re[2]:".
_PREFIXES = r"(?:(?:re|fwd?|aw|wg|sv|tr|antw)\s*(?:\[\d+\])?\s*:\s*)*"
_IN_SUBJECT = re.compile(rf"\s*{_PREFIXES}unsubscribe\s*:?\s+(\S+)\s*", re.IGNORECASE)
# The first line of the body may hold the request too, or the token alone.
_IN_LINE = re.compile(r"\s*(?:unsubscribe\s*:?\s+)?(?!unsubscribe\s*$)(\S+)\s*", re.IGNORECASE)


def token_in_subject(subject: str) -> str | None:
    """The token of a subject "unsubscribe TOKEN", under any Re:/Fwd: prefixes, in any case."""
    # A client that copies the mailto's subject without decoding it sends "unsubscribe%20…";
    # a token never holds a "%", so decoding is safe either way.
    match = _IN_SUBJECT.fullmatch(unquote(subject))
    return match[1] if match else None


def token_in_line(line: str) -> str | None:
    """The token of a body line "unsubscribe TOKEN", or of a line that is one word."""
    match = _IN_LINE.fullmatch(unquote(line))
    return match[1] if match else None


def read_unsubscribe(message: EmailMessage) -> str | None:
    """The token an unsubscribe message carries: in its subject, else in its body's first
    line. None when it carries none."""
    token = token_in_subject(str(message.get("Subject", "")))
    if token is not None:
        return token
    line = _first_line(message)
    return None if line is None else token_in_line(line)


def _first_line(message: EmailMessage) -> str | None:
    body = message.get_body(preferencelist=("plain",))
    if body is None:
        return None
    try:
        text = body.get_content()
    except (LookupError, ValueError):  # an unknown charset, a broken encoding
        return None
    if not isinstance(text, str):
        return None
    return next((line for line in text.splitlines() if line.strip()), None)


@dataclass(frozen=True, slots=True)
class Bounce:
    """One recipient's block of a delivery status notification that says the message did
    not arrive (``Action: failed``) or has not yet (``Action: delayed``)."""

    #: The address the message was sent to: the Original-Recipient when the report gives
    #: one (the Final-Recipient can be where a forward led), else the Final-Recipient.
    recipient: str
    #: "failed" or "delayed".
    action: str
    #: The status code, "5.1.1"; empty when the report gives none that can be read.
    status: str
    #: What the receiving server said (Diagnostic-Code, without its type); may be empty.
    diagnostic: str = ""
    #: The server that wrote the report (Reporting-MTA).
    reporting_mta: str = ""
    #: The Message-ID of the returned message, when the report includes it or its headers.
    message_id: str | None = None

    @property
    def permanent(self) -> bool:
        """Whether the mailbox refused the message for good: failed, with a 5.x.x status."""
        return self.action == "failed" and self.status.startswith("5.")

    @property
    def reason(self) -> str:
        """Why, in one line: the server's words, else the status."""
        said = self.diagnostic or f"status {self.status or 'unknown'}"
        return f"{said} (reported by {self.reporting_mta})" if self.reporting_mta else said


REPORT_TYPES = frozenset({"delivery-status", "global-delivery-status"})
_STATUS_PARTS = frozenset({"message/delivery-status", "message/global-delivery-status"})
#: The parts that return the message, or its headers.
_RETURNED = frozenset(
    {"message/rfc822", "message/global", "text/rfc822-headers", "message/global-headers"}
)
_STATUS = re.compile(r"[245]\.\d{1,3}\.\d{1,3}\b")
# "smtp; 550 5.1.1 ...": a diagnostic type is one word before the semicolon.
_TYPED = re.compile(r"\s*[A-Za-z][\w.-]*\s*;\s*(.*)", re.DOTALL)
# RFC 6533 writes characters of a utf-8 address type that need it as \x{HEX}.
_UTF8_ESCAPE = re.compile(r"\\x\{([0-9A-Fa-f]{1,6})\}")
#: Longest diagnostic kept: enough for any server's sentence, not for a pasted message.
DIAGNOSTIC_LIMIT = 500


def is_delivery_report(message: Message) -> bool:
    """Whether ``message`` is a delivery status notification (multipart/report)."""
    if message.get_content_type() != "multipart/report":
        return False
    report_type = message.get_param("report-type", "")
    if isinstance(report_type, tuple):
        report_type = collapse_rfc2231_value(report_type)
    return str(report_type).strip().lower() in REPORT_TYPES


def read_bounces(message: EmailMessage) -> list[Bounce]:
    """Each recipient a delivery status notification says failed or was delayed.

    Empty for any other message, and for a report that cannot be read. A block without a
    recipient is skipped; one whose status cannot be read keeps an empty status (so it is
    never taken for a permanent failure).
    """
    if not is_delivery_report(message):
        return []
    parts = list(message.iter_parts())
    status_part = next((p for p in parts if p.get_content_type() in _STATUS_PARTS), None)
    if status_part is None:
        return []
    reporting_mta = ""
    recipients = []
    for block in _blocks(status_part):
        if any(name in block for name in ("Final-Recipient", "Original-Recipient", "Action")):
            recipients.append(block)
        elif "Reporting-MTA" in block:
            reporting_mta = _typed_value(_field(block, "Reporting-MTA"))
    message_id = _returned_message_id(parts)
    read = (_bounce(block, reporting_mta, message_id) for block in recipients)
    return [bounce for bounce in read if bounce is not None]


def _bounce(block: Message, reporting_mta: str, message_id: str | None) -> Bounce | None:
    action = _field(block, "Action").strip().lower()
    if action not in ("failed", "delayed"):
        return None
    recipient = _address(_field(block, "Original-Recipient")) or _address(
        _field(block, "Final-Recipient")
    )
    if recipient is None:
        return None
    status = _STATUS.match(_field(block, "Status").strip())
    diagnostic = _typed_value(_field(block, "Diagnostic-Code"))
    return Bounce(
        recipient,
        action,
        status[0] if status else "",
        safe_line(diagnostic, DIAGNOSTIC_LIMIT),
        safe_line(reporting_mta, 200),
        message_id,
    )


def _blocks(part: Message) -> Iterator[Message]:
    """The header blocks of a delivery-status part: the per-message one, then one per
    recipient."""
    payload = part.get_payload()
    if not isinstance(payload, list):
        yield from _header_blocks(_text(part))
    elif part.get_content_type() == "message/delivery-status":
        # The email package splits this type into its blocks itself.
        yield from (block for block in payload if isinstance(block, Message))
    elif payload and isinstance(payload[0], Message):
        # Any other message/* type (RFC 6533's global one) it reads as one message: the
        # first block is its header, and its body holds the others.
        yield payload[0]
        yield from _header_blocks(_text(payload[0]))


def _text(part: Message) -> str:
    raw = part.get_payload(decode=True)
    return raw.decode("utf-8", "replace") if isinstance(raw, bytes) else ""


def _header_blocks(text: str) -> Iterator[Message]:
    parser = HeaderParser(policy=default_policy)
    for chunk in re.split(r"\n[ \t]*\n", text.replace("\r\n", "\n")):
        if chunk.strip():
            yield parser.parsestr(chunk.strip("\n") + "\n")


def _field(block: Message, name: str) -> str:
    value = block.get(name)
    return "" if value is None else str(value)


def _typed_value(value: str) -> str:
    """``value`` without its type ("dns; mx.example.net" → "mx.example.net")."""
    typed = _TYPED.fullmatch(value)
    return (typed[1] if typed else value).strip()


def _address(value: str) -> str | None:
    """The address of a recipient field ("rfc822; ann@example.com"), or None."""
    kind, semicolon, address = value.partition(";")
    if not semicolon:
        address = kind
    elif kind.strip().lower() == "utf-8":
        address = _UTF8_ESCAPE.sub(lambda hex_code: chr(int(hex_code[1], 16)), address)
    address = safe_line(address).strip("<>").strip()
    return address if "@" in address else None


def _returned_message_id(parts: Sequence[Message]) -> str | None:
    """The Message-ID of the message a report returns, whole or as its headers."""
    for part in parts:
        if part.get_content_type() not in _RETURNED:
            continue
        payload = part.get_payload()
        if isinstance(payload, list):  # message/*: read as the message it holds
            returned = payload[0] if payload and isinstance(payload[0], Message) else None
        else:
            returned = HeaderParser(policy=default_policy).parsestr(_text(part))
        if returned is not None and returned.get("Message-ID") is not None:
            return safe_line(str(returned["Message-ID"])) or None
    return None
