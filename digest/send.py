"""Hand messages to an SMTP server, one connection reused for a whole send.

Every message goes through real SMTP: to ``DIGEST_SMTP_URL`` when it is set, otherwise to
the embedded server of ``outbox.py``.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from email.utils import parseaddr
from urllib.parse import parse_qs, unquote, urlsplit

from .errors import MessageRefusedError, SendError

_NEWLINES = re.compile(r"[\r\n\x00]+")
_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9@._+-]")


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
