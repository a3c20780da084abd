"""Hand messages to an SMTP server, one connection reused for a whole send.

Every message goes through real SMTP: to ``DIGEST_SMTP_URL`` when it is set, otherwise to
the embedded server of ``outbox.py``.

The envelope carries each address in its delivery form (``addresses.envelope_address``: the
domain as an A-label). A local part that is not ASCII goes out with SMTPUTF8 when the server
offers it, and is otherwise one refused message, not the end of the send. A password is
only sent over TLS (``smtps://`` or ``?starttls=1``) unless the URL says ``?insecure=1``.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Callable
from email.utils import parseaddr
from functools import lru_cache
from urllib.parse import parse_qs, unquote, urlsplit

from .addresses import envelope_address, is_delivery_form
from .errors import AddressError, ConfigError, MessageRefusedError, SendError
from .ledger import Reply

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
        self._starttls = _flag(query, "starttls")
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        if self._user is not None and not (
            self._implicit_tls or self._starttls or _flag(query, "insecure")
        ):
            raise ConfigError(
                f"{_without_password(url)}: refusing to send the SMTP password without TLS; "
                "use smtps:// or add ?starttls=1 (or ?insecure=1 to send it in clear anyway)"
            )
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
        """Hand one message over, as it is; ``SendError`` when the server is gone.

        ``MessageRefusedError`` when only this message cannot go: the server refused it, or
        the recipient needs SMTPUTF8 and the server does not offer it.
        """
        reply = self.deliver(message, sender, recipient)
        if reply.code is None or not 200 <= reply.code < 300:
            raise MessageRefusedError(f"{recipient}: {reply.described}")

    def deliver(
        self,
        message: bytes,
        sender: str,
        recipient: str,
        handing_over: Callable[[], None] | None = None,
    ) -> Reply:
        """Hand one message over and return the server's reply; ``SendError`` when the
        server cannot be reached at all.

        Up to the DATA command nothing is handed over, so a connection the server dropped
        while idle is opened again and the message tried once more. ``handing_over`` is
        called just before the message itself goes (the ledger's in-flight mark; if it
        raises, the message is withdrawn and the exception passes on); after
        that, a lost connection is a lost answer (``Reply(None)``), never a second try:
        the server may have the message already.
        """
        try:
            envelope_to = _envelope(recipient)
        except AddressError as exc:
            return Reply(553, f"{recipient} cannot be mailed ({exc})")
        try:
            envelope_from = _envelope_from(sender)
        except AddressError as exc:
            raise SendError(f"{sender}: cannot be sent from ({exc})") from None
        # The domains are ASCII by now: what is left is a local part only SMTPUTF8 can carry.
        international = not (envelope_to.isascii() and envelope_from.isascii())
        for attempt in range(2):
            client = self._client or self._connect()
            self._client = client
            try:
                refused = self._envelope(client, envelope_from, envelope_to, international, message)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._client = None  # nothing was handed over: a new connection may try
                if attempt:
                    raise SendError(f"SMTP server {self.where}: {_smtp_reason(exc)}") from None
                continue
            if refused is not None:
                return refused
            if handing_over is not None:
                try:
                    handing_over()
                except BaseException:
                    _reset(client)  # withdrawn before its data: the connection stays usable
                    raise
            return self._data(client, message)
        raise AssertionError("unreachable")  # the loop returns or raises

    def _envelope(
        self,
        client: smtplib.SMTP,
        envelope_from: str,
        envelope_to: str,
        international: bool,
        message: bytes,
    ) -> Reply | None:
        """MAIL FROM and RCPT TO; the refusal, or None when the server takes the message."""
        client.ehlo_or_helo_if_needed()
        options: list[str] = []
        if international:
            if not client.has_extn("smtputf8"):
                # 554: not the mailbox's fault, so it does not count toward a bounce.
                return Reply(
                    554, "the server does not accept internationalised addresses (SMTPUTF8)"
                )
            options.append("SMTPUTF8")
        if not message.isascii() and client.has_extn("8bitmime"):
            # Headers in raw UTF-8 (a message made for SMTPUTF8) are 8-bit data.
            options.append("BODY=8BITMIME")
        code, text = _command(client, "mail", "FROM:", envelope_from, options)
        if code == 421:
            raise smtplib.SMTPServerDisconnected(_text(text))  # closing: try a new connection
        if code != 250:
            _reset(client)
            return Reply(code, _text(text))
        code, text = _command(client, "rcpt", "TO:", envelope_to, [])
        if code == 421:
            raise smtplib.SMTPServerDisconnected(_text(text))
        if code not in (250, 251):
            _reset(client)
            return Reply(code, _text(text))
        return None

    def _data(self, client: smtplib.SMTP, message: bytes) -> Reply:
        try:
            client.putcmd("data")
            code, text = client.getreply()
            if code != 354:  # DATA itself refused: nothing handed over
                _reset(client)
                return Reply(code, _text(text))
            client.send(_data_block(message))
            code, text = client.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            self._client = None
            return Reply(
                None, f"no answer from {self.where} after the message ({_smtp_reason(exc)})"
            )
        if code == 421:
            self._client = None
        return Reply(code, _text(text))

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._client.quit()
            self._client = None


def _text(text: bytes | str) -> str:
    return text.decode(errors="replace") if isinstance(text, bytes) else text


def _reset(client: smtplib.SMTP) -> None:
    with contextlib.suppress(smtplib.SMTPException, OSError):
        client.rset()


def _command(
    client: smtplib.SMTP, verb: str, prefix: str, address: str, options: list[str]
) -> tuple[int, bytes]:
    """MAIL FROM or RCPT TO, as ``client.mail`` and ``client.rcpt`` send them. A plain
    address goes straight into the command: the library parses each one again first, which
    cost as much as a whole message's other work."""
    # SMTPUTF8 also switches the library's commands to UTF-8: that is its to do.
    if "SMTPUTF8" in options or not is_delivery_form(address):
        return client.mail(address, options) if verb == "mail" else client.rcpt(address)
    client.ehlo_or_helo_if_needed()
    tail = "".join(f" {option}" for option in options)
    client.putcmd(verb, f"{prefix}<{address}>{tail}")
    return client.getreply()


def _data_block(message: bytes) -> bytes:
    """``message`` as DATA carries it: each line starting with a dot gets another (RFC 5321
    4.5.2), then the end mark. What ``smtplib.SMTP.data`` sends, without its regular
    expression, which took half a millisecond over a 50 KB message."""
    stuffed = message.replace(b"\n.", b"\n..")
    if stuffed.startswith(b"."):
        stuffed = b"." + stuffed
    if not stuffed.endswith(b"\r\n"):
        stuffed += b"\r\n"
    return stuffed + b".\r\n"


@lru_cache(maxsize=16)
def _envelope_from(sender: str) -> str:
    # Cached: every message of a send comes from the same sender.
    return _envelope(parseaddr(sender)[1])


def _envelope(address: str) -> str:
    """``address`` for MAIL FROM or RCPT TO.

    One the validator refuses (``digest@localhost``) goes as it is when it is ASCII, for the
    server to judge, as it always did.
    """
    if is_delivery_form(address):
        return address
    try:
        return envelope_address(address)
    except AddressError:
        if address.isascii():
            return address
        raise


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["0"])[0].lower() in ("1", "true", "yes")


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()


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
