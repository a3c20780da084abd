"""A subscriber's message: the edition made theirs, rendered, with the headers it needs.

``make_email`` is the one place that decides what a subscriber's email contains (their
watchlist first, their links, both parts, the list headers); sending, the web edition and
the benchmark all call it. ``compose`` and ``to_bytes`` turn it into the bytes on the wire.
``digest.wire`` writes those bytes faster, from the same pieces, made once per edition.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from email.message import EmailMessage
from email.utils import format_datetime, parseaddr
from functools import cached_property, lru_cache

from jinja2 import Environment

from .addresses import envelope_address
from .errors import AddressError
from .headers import MAIL_POLICY, UTF8_POLICY, one_line, set_header
from .models import Digest, Email, Story, Subscriber
from .render import Drafts, make_environment
from .site import Links, Site


@dataclass(frozen=True, slots=True)
class DkimKey:
    """A DKIM signing key for the sender's domain."""

    selector: str
    domain: str
    private_key: bytes


@dataclass(frozen=True)
class Publisher:
    """Who sends the edition and what every message of it carries besides the stories."""

    site: Site
    #: The From address: "Market Digest <digest@example.com>".
    sender: str
    title: str
    #: The sender's postal address, printed in every message's footer (CAN-SPAM).
    postal_address: str
    environment: Environment
    dkim: DkimKey | None = None

    @cached_property
    def list_id(self) -> str:
        return list_id(self.title, self.sender)


def make_publisher(
    site: Site, sender: str, title: str, postal_address: str, dkim: DkimKey | None = None
) -> Publisher:
    return Publisher(site, sender, title, postal_address, make_environment(), dkim)


def personalise(digest: Digest, watchlist: Sequence[str]) -> tuple[tuple[Story, ...], Digest]:
    """The stories about ``watchlist`` symbols, and the edition without them.

    They lead that subscriber's email as "Your watchlist" instead of standing twice in it.
    """
    watched = {symbol.upper() for symbol in watchlist}
    if not watched:
        return (), digest

    def about(story: Story) -> bool:
        return bool(watched & set(story.tickers))

    stories = [*digest.top, *(story for _, section in digest.sections for story in section)]
    picked = tuple(story for story in stories if about(story))
    rest = replace(
        digest,
        top=tuple(story for story in digest.top if not about(story)),
        sections=tuple(
            (section, kept)
            for section, stories_in in digest.sections
            if (kept := tuple(story for story in stories_in if not about(story)))
        ),
    )
    return picked, rest


def make_email(
    digest: Digest,
    publisher: Publisher,
    subscriber: Subscriber | None = None,
    *,
    message_id: str | None = None,
) -> Email:
    """``digest`` as ``subscriber`` gets it, or as the public web page shows it (None)."""
    recipient = subscriber.email if subscriber else ""
    site = publisher.site
    # Tokens issued as of the edition: the same links in a resend and on the web page.
    issued = digest.window_end
    links = site.links(digest.date, subscriber, issued)
    rendered = draft_email(
        digest,
        publisher,
        subscriber.watchlist if subscriber else (),
        links,
        subscriber.name if subscriber else "",
    ).rendered()
    headers = () if subscriber is None else list_headers(publisher, links, subscriber, issued)
    return Email(
        recipient=recipient,
        subject=rendered.subject,
        html=rendered.html,
        text=rendered.text,
        message_id=message_id or make_message_id(digest.date, recipient, publisher.sender),
        headers=headers,
    )


def draft_email(
    digest: Digest,
    publisher: Publisher,
    watchlist: Sequence[str],
    links: Links,
    recipient_name: str,
) -> Drafts:
    """The email of a subscriber with ``watchlist``, ``links`` and ``recipient_name``, at each
    trimming step: the watchlist's stories lead, and the rest of the edition follows."""
    watched, rest = personalise(digest, watchlist)
    return Drafts(
        rest,
        links,
        recipient_name,
        publisher.environment,
        postal_address=publisher.postal_address,
        watchlist=watched,
    )


def make_message_id(date: dt.date, email: str, sender: str) -> str:
    """Stable for one edition and one recipient, so a resend is recognisable."""
    domain = _domain(sender)
    token = hashlib.sha256(f"{date.isoformat()}\0{email.lower()}".encode()).hexdigest()[:20]
    return f"<digest.{date:%Y%m%d}.{token}@{domain}>"


def list_id(title: str, sender: str) -> str:
    domain = _domain(sender)
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "digest"
    return f"{one_line(title)} <{slug}.{domain}>"


def list_headers(
    publisher: Publisher, links: Links, subscriber: Subscriber, issued: dt.datetime
) -> tuple[tuple[str, str], ...]:
    """The list headers of ``subscriber``'s message, whose personal links are ``links``."""
    return unsubscribe_headers(
        links.unsubscribe,
        publisher.site.unsubscribe_mailto(publisher.sender, subscriber, issued),
        publisher.list_id,
    )


@lru_cache(maxsize=16)
def _domain(sender: str) -> str:
    # Cached: a send asks it of the same sender for every message.
    return parseaddr(sender)[1].rpartition("@")[2] or "localhost"


def unsubscribe_headers(url: str, mailto: str, list_identifier: str) -> tuple[tuple[str, str], ...]:
    """List-Id and one-click unsubscribe (RFC 2369 and RFC 8058), web and mail both."""
    return (
        ("List-Id", list_identifier),
        ("List-Unsubscribe", f"<{url}>, <{mailto}>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


def compose(email: Email, sender: str, now: dt.datetime) -> EmailMessage:
    """A multipart/alternative message with the headers mail providers require.

    Every value is set with ``set_header``: whatever text it is given, composing does not
    raise and no value adds a header line.
    """
    message = EmailMessage(policy=MAIL_POLICY)
    set_header(message, "From", sender)
    set_header(message, "To", delivery_form(email.recipient))
    set_header(message, "Subject", email.subject)
    message["Date"] = date_value(now)
    set_header(message, "Message-ID", email.message_id)
    for name, value in email.headers:
        set_header(message, name, value)
    add_parts(message, email.text, email.html)
    return message


def date_value(now: dt.datetime) -> str:
    """The Date header of a message sent at ``now``."""
    return format_datetime(now.astimezone(dt.UTC))


def add_parts(message: EmailMessage, text: str, html: str) -> None:
    """Make ``message`` multipart/alternative: ``text``, then ``html``, quoted-printable."""
    message.set_content(text, cte="quoted-printable")
    message.add_alternative(html, subtype="html", cte="quoted-printable")


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


def delivery_form(recipient: str) -> str:
    """The To address as it can be written: the domain in ASCII (an A-label), so that only a
    local part that is not ASCII needs an SMTPUTF8 message (RFC 6532)."""
    try:
        return envelope_address(recipient)
    except AddressError:
        return recipient  # not an address at all: set_header writes it as plain text


def to_bytes(message: EmailMessage, dkim_key: DkimKey | None = None) -> bytes:
    """The message as sent on the wire, DKIM-signed when a key is given.

    A recipient whose local part is not ASCII (用户@...) is written as UTF-8 (RFC 6532):
    encoded words are not allowed inside an address. Such a message goes only to a server
    that offers SMTPUTF8 (see send.Mailer); every other one stays 7-bit.
    """
    policy = MAIL_POLICY if str(message["To"]).isascii() else UTF8_POLICY
    raw = message.as_bytes(policy=policy)
    return raw if dkim_key is None else sign(raw, dkim_key)


def sign(raw: bytes, dkim_key: DkimKey) -> bytes:
    """``raw`` with a DKIM-Signature header in front, over ``DKIM_HEADERS`` and the body."""
    import dkim

    signature = dkim.sign(
        raw,
        dkim_key.selector.encode(),
        dkim_key.domain.encode(),
        dkim_key.private_key,
        include_headers=list(DKIM_HEADERS),
    )
    return bytes(signature) + raw
