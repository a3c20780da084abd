"""Address, compose and hand messages to SMTP; the embedded server that fills ``outbox/``.

Every message goes through real SMTP: to ``DIGEST_SMTP_URL`` when it is set, otherwise to
an aiosmtpd server on 127.0.0.1 that writes each message to
``outbox/<edition date>/<recipient>.eml``.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import hashlib
import hmac
import re
import smtplib
import ssl
from dataclasses import dataclass
from email.errors import HeaderParseError
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, parseaddr
from urllib.parse import parse_qs, quote, unquote, urlsplit

from .errors import AddressError, MessageRefusedError, SendError
from .models import Email

_NEWLINES = re.compile(r"[\r\n\x00]+")


# -- addresses and links ------------------------------------------------------------------


def normalize_address(address: str) -> str:
    """The address in canonical form, or ``AddressError`` saying what is wrong with it."""
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise AddressError(f"{address!r}: {exc}") from None


def sign(key: str, email: str) -> str:
    digest = hmac.new(key.encode(), email.lower().encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:18]).decode()


def verify(key: str, email: str, signature: str) -> bool:
    return hmac.compare_digest(sign(key, email), signature)


def make_token(key: str, email: str) -> str:
    """An opaque, signed token naming a subscriber, for links that act on their behalf.

    Links carry this rather than the address itself, which would leak it into logs and
    looks, to spam filters, like a tracking link.
    """
    encoded = base64.urlsafe_b64encode(email.encode()).decode().rstrip("=")
    return f"{encoded}.{sign(key, email)}"


def read_token(key: str, token: str) -> str | None:
    """The address a token made by ``make_token`` names, or None if it is not genuine."""
    encoded, _, signature = token.partition(".")
    try:
        email = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return email if signature and verify(key, email, signature) else None


def unsubscribe_url(site_url: str, key: str, email: str) -> str:
    return f"{site_url}/unsubscribe?t={make_token(key, email)}"


def make_message_id(date: dt.date, email: str, sender: str) -> str:
    """Stable for one edition and one recipient, so a resend is recognisable."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    token = hashlib.sha256(f"{date.isoformat()}\0{email.lower()}".encode()).hexdigest()[:20]
    return f"<digest.{date:%Y%m%d}.{token}@{domain}>"


def list_id(title: str, sender: str) -> str:
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "digest"
    return f"{_one_line(title)} <{slug}.{domain}>"


# -- composing ------------------------------------------------------------------------------


def _one_line(text: str) -> str:
    """No feed text may add a header line: every newline goes, encoded or not.

    RFC 2047 encoded words are decoded first, so "=?utf-8?q?=0D=0A?=" loses its newline
    too (Python's own header folding does not guard against it: CVE-2024-6923).
    """
    if "=?" in text:
        try:
            text = str(make_header(decode_header(text)))
        except (HeaderParseError, LookupError, UnicodeError, ValueError):
            text = text.replace("=?", "= ?")  # not valid encoded words: keep them inert
    return _NEWLINES.sub(" ", text).strip()


def compose(email: Email, sender: str, now: dt.datetime) -> EmailMessage:
    """A multipart/alternative message with the headers mail providers require."""
    message = EmailMessage(policy=SMTP)
    message["From"] = _one_line(sender)
    message["To"] = email.recipient
    message["Subject"] = _one_line(email.subject)
    message["Date"] = format_datetime(now.astimezone(dt.UTC))
    message["Message-ID"] = email.message_id
    for name, value in email.headers:
        message[name] = _one_line(value)
    message.set_content(email.text, cte="quoted-printable")
    message.add_alternative(email.html, subtype="html", cte="quoted-printable")
    return message


# -- SMTP client ----------------------------------------------------------------------------


class Mailer:
    """One SMTP connection, reused for every message of a send."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        self.url = url
        parts = urlsplit(url)
        self._host = parts.hostname or "localhost"
        self._implicit_tls = parts.scheme == "smtps"
        self._port = parts.port or (465 if self._implicit_tls else 25)
        query = parse_qs(parts.query)
        self._starttls = query.get("starttls", ["0"])[0].lower() in ("1", "true", "yes")
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._timeout = timeout
        self._client: smtplib.SMTP | None = None

    @property
    def where(self) -> str:
        return f"{self._host}:{self._port}"

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context()
        try:
            client: smtplib.SMTP
            if self._implicit_tls:
                client = smtplib.SMTP_SSL(
                    self._host, self._port, timeout=self._timeout, context=context
                )
            else:
                client = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
                if self._starttls:
                    client.starttls(context=context)
            if self._user is not None:
                client.login(self._user, self._password or "")
        except (OSError, smtplib.SMTPException) as exc:
            raise SendError(f"SMTP server {self.where}: {_smtp_reason(exc)}") from None
        return client

    def send(self, message: bytes, sender: str, recipient: str) -> None:
        """Hand one message over; ``SendError`` when the server refuses or is gone."""
        envelope_from = parseaddr(sender)[1]
        for attempt in range(2):
            if self._client is None:
                self._client = self._connect()
            try:
                self._client.sendmail(envelope_from, [recipient], message)
                return
            except smtplib.SMTPServerDisconnected:
                # A server may drop an idle connection; one reconnect is normal.
                self._client = None
                if attempt:
                    raise SendError(f"SMTP server {self.where}: connection lost") from None
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError) as exc:
                raise MessageRefusedError(f"{recipient}: {_smtp_reason(exc)}") from None
            except (OSError, smtplib.SMTPException) as exc:
                self.close()
                raise SendError(f"SMTP server {self.where}: {_smtp_reason(exc)}") from None

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._client.quit()
            self._client = None


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        detail = error.decode(errors="replace") if isinstance(error, bytes) else error
        return f"{exc.smtp_code} {detail}"
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, text = next(iter(exc.recipients.values()))
        detail = text.decode(errors="replace") if isinstance(text, bytes) else text
        return f"recipient refused: {code} {detail}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc) or type(exc).__name__
    return str(exc) or type(exc).__name__


def unsubscribe_mailto(sender: str, key: str, email: str) -> str:
    """A mailto: unsubscribe address at the sender's domain, carrying the signed address."""
    local, _, domain = parseaddr(sender)[1].partition("@")
    subject = quote(f"unsubscribe {make_token(key, email)}")
    return f"mailto:{local}+unsubscribe@{domain}?subject={subject}"


def unsubscribe_headers(url: str, mailto: str, list_identifier: str) -> tuple[tuple[str, str], ...]:
    """List-Id and one-click unsubscribe (RFC 2369 and RFC 8058), web and mail both."""
    return (
        ("List-Id", list_identifier),
        ("List-Unsubscribe", f"<{url}>, <{mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM signing key for the sender's domain."""

    selector: str
    domain: str
    private_key: bytes


#: Headers the DKIM signature covers: the ones a forger would want to change.
DKIM_HEADERS = (
    b"From",
    b"To",
    b"Subject",
    b"Date",
    b"Message-ID",
    b"List-Id",
    b"List-Unsubscribe",
    b"List-Unsubscribe-Post",
    b"MIME-Version",
    b"Content-Type",
)


def to_bytes(message: EmailMessage, dkim_key: DkimKey | None = None) -> bytes:
    """The message as sent on the wire, DKIM-signed when a key is given."""
    raw = message.as_bytes(policy=SMTP)
    if dkim_key is None:
        return raw
    import dkim

    signature = dkim.sign(
        raw,
        dkim_key.selector.encode(),
        dkim_key.domain.encode(),
        dkim_key.private_key,
        include_headers=list(DKIM_HEADERS),
    )
    return bytes(signature) + raw
