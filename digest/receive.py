"""Inbound mail: an SMTP server (aiosmtpd) for the list's own addresses, and what it does with
what arrives.

``Receiver.receive`` applies one message to the store: a ``mailto:`` unsubscribe unsubscribes
the reader its token names, a bounce report marks the delivery it names ``bounced`` (and
drops an address that keeps bouncing, by the ledger's rule). Anything else is taken and
ignored: an error reply would only make a relay try again, or bounce a bounce. Mail for any
other address is refused at RCPT, so the server relays nothing. Each event is one log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.parser import BytesParser
from email.policy import default as default_policy
from typing import Any

from aiosmtpd.controller import Controller

from .config import Settings
from .errors import StoreError
from .inbound import Bounce, Mailboxes, Role, mailboxes_of, read_bounces, read_unsubscribe
from .pipeline import make_site
from .sanitize import safe_line
from .store import Store
from .tokens import Purpose

log = logging.getLogger(__name__)


class Action(enum.StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    #: The address bounced ``bounce_after`` editions in a row: it gets no more mail.
    DROPPED = "dropped"
    #: A delay or a failure that may not last (4.x.x): noted in the log, recorded nowhere.
    TEMPORARY = "temporary"
    IGNORED = "ignored"


@dataclass(frozen=True, slots=True)
class Event:
    """One thing a received message did, or why it did nothing."""

    action: Action
    #: Whom it is about: the subscriber, or the envelope sender of a message ignored.
    address: str
    detail: str

    def __str__(self) -> str:
        return f"{self.action} {self.address or '<>'}: {self.detail}"


@dataclass(frozen=True)
class Receiver:
    """What becomes of mail to the list's addresses (see ``make_receiver``)."""

    store: Store
    mailboxes: Mailboxes
    #: The subscriber an unsubscribe token names, or None when it is not genuine.
    reader: Callable[[str], str | None]
    bounce_after: int

    def receive(
        self, mail_from: str, recipients: Sequence[str], raw: bytes, now: dt.datetime
    ) -> list[Event]:
        """Apply one message, sent by ``mail_from`` to ``recipients`` (the list's own), to
        the store; what it did, each event logged."""
        message = BytesParser(EmailMessage, policy=default_policy).parsebytes(raw)
        roles = {self.mailboxes.role(address) for address in recipients}
        sender = safe_line(mail_from, 320)
        events = []
        if Role.UNSUBSCRIBE in roles:
            events.append(self._unsubscribe(message, sender, now))
        if Role.BOUNCES in roles:
            bounces = read_bounces(message)
            for bounce in bounces:
                events.extend(self._bounce(bounce, now))
            if not bounces:
                subject = safe_line(str(message.get("Subject", "")), 100)
                events.append(Event(Action.IGNORED, sender, f"not a bounce report: {subject!r}"))
        for event in events:
            log.info("%s", event)
        return events

    def _unsubscribe(self, message: EmailMessage, sender: str, now: dt.datetime) -> Event:
        token = read_unsubscribe(message)
        if token is None:
            return Event(Action.IGNORED, sender, "an unsubscribe request without a token")
        email = self.reader(token)
        if email is None:
            return Event(Action.IGNORED, sender, "an unsubscribe request whose token is not valid")
        if not self.store.unsubscribe(email, now):
            return Event(Action.IGNORED, email, "unsubscribe by mail: already unsubscribed")
        return Event(Action.UNSUBSCRIBED, email, "by mail")

    def _bounce(self, bounce: Bounce, now: dt.datetime) -> list[Event]:
        if not bounce.permanent:
            detail = f"{bounce.action} {bounce.status or '(no status)'}: {bounce.reason}"
            return [Event(Action.TEMPORARY, bounce.recipient, f"{detail}; not recorded")]
        reported = self.store.record_bounce_report(
            bounce.recipient, bounce.message_id, bounce.reason, now, self.bounce_after
        )
        if reported is None:
            return [Event(Action.IGNORED, bounce.recipient, "a bounce report for no message sent")]
        events = [Event(Action.BOUNCED, bounce.recipient, f"{reported.date}: {bounce.reason}")]
        if reported.dropped:
            detail = f"bounced {self.bounce_after} editions in a row; no more mail"
            events.append(Event(Action.DROPPED, bounce.recipient, detail))
        return events


def make_receiver(settings: Settings, store: Store) -> Receiver:
    """The receiver for the edition's From address, reading tokens as the site signs them."""
    site = make_site(settings, store)

    def reader(token: str) -> str | None:
        # The one place an unsubscribe token is read: the subscriber its public id names.
        found = site.read(Purpose.UNSUBSCRIBE, token, dt.datetime.now(dt.UTC))
        record = None if found is None else store.record_by_public_id(found.public_id)
        return None if record is None else record.subscriber.email

    return Receiver(
        store, mailboxes_of(settings.edition.sender), reader, settings.sending.bounce_after
    )


class _Handler:
    """aiosmtpd's hooks: refuse other addresses at RCPT, apply each message after DATA."""

    def __init__(self, receiver: Receiver) -> None:
        self.receiver = receiver

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        mailboxes = self.receiver.mailboxes
        if mailboxes.role(address) is not None:
            envelope.rcpt_tos.append(address)
            return "250 OK"
        if mailboxes.is_our_domain(address):
            return "550 5.1.1 No such mailbox here"
        return "550 5.7.1 Relaying denied"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or envelope.content
        now = dt.datetime.now(dt.UTC)
        try:
            # The store blocks; the loop goes on serving other connections meanwhile.
            await asyncio.to_thread(
                self.receiver.receive, envelope.mail_from or "", envelope.rcpt_tos, raw, now
            )
        except StoreError as exc:
            # The message is sound and the database is not, for now: a relay tries again
            # later (and gives up after days), so the unsubscribe or bounce is not lost.
            log.warning("cannot record a message now: %s", exc)
            return "451 4.3.0 Cannot record this message now; try again later"
        except Exception:
            # No reply would help: a relay would retry a message that fails the same way
            # every time, or bounce it to a sender who cannot fix it.
            log.exception("a message from %s could not be read; ignored", envelope.mail_from)
        return "250 OK"


class _Listener(Controller):
    """aiosmtpd's threaded ``Controller`` on ``hostname``:``port``; port 0 lets the system
    pick one, and ``port`` is the one it got once ``start()`` returns."""

    def _create_server(self) -> Awaitable[asyncio.AbstractServer]:
        return self._listen()

    async def _listen(self) -> asyncio.AbstractServer:
        server = await self.loop.create_server(
            self._factory_invoker, host=self.hostname, port=self.port, ssl=self.ssl_context
        )
        self.port = int(server.sockets[0].getsockname()[1])
        return server


@contextlib.contextmanager
def inbound_server(
    receiver: Receiver, host: str = "127.0.0.1", port: int = 0
) -> Iterator[tuple[str, int]]:
    """Receive the list's mail on ``host``:``port`` in a thread while the block runs.

    Yields the host and the port it listens on (the one the system picked for port 0).
    """
    # SMTPUTF8: a subscriber's address, returned in a report, may not be ASCII.
    listener = _Listener(
        _Handler(receiver),
        hostname=host,
        port=port,
        # The greeting names the list's domain, rather than whatever a reverse lookup of
        # this host gives (which can take seconds).
        server_hostname=receiver.mailboxes.domain,
        enable_SMTPUTF8=True,
    )
    listener.start()
    try:
        yield host, listener.port
    finally:
        listener.stop()
