"""The site's addresses, and the signed tokens its personal links carry.

Every URL the emails and the web pages point at is made here, so the scheme lives once.
Personal links carry an opaque signed token (``digest.tokens``) rather than the address,
which would leak it into logs and looks, to spam filters, like a tracking link; each token
is good for one purpose only: unsubscribing, the preferences page, confirming a sign-up, or
the subscriber's own web edition.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from email.utils import parseaddr
from functools import lru_cache

from .models import Subscriber
from .tokens import Purpose, Token, make_token, read_token

ARCHIVE_PATH = "/archive/"
FEED_PATH = "/feed.xml"
PREFERENCES_PATH = "/preferences"
UNSUBSCRIBE_PATH = "/unsubscribe"
SUBSCRIBE_PATH = "/subscribe"
CONFIRM_PATH = "/confirm"


def edition_path(date: dt.date, text: bool = False) -> str:
    """The web edition of ``date``, or its plain-text version."""
    return f"{ARCHIVE_PATH}{date.isoformat()}{'.txt' if text else ''}"


def is_published(date: dt.date, today: dt.date, sent: bool, story_count: int) -> bool:
    """Whether the site shows the edition of ``date``: one that went out to its subscribers,
    or today's while it has stories. A dry run or a build for another date is never public,
    and neither is an empty edition nobody received."""
    return sent or (date == today and story_count > 0)


@dataclass(frozen=True, slots=True)
class Links:
    """Where a message or page points besides the stories."""

    site_url: str
    unsubscribe: str
    view_in_browser: str
    preferences: str = ""


#: "unsubscribe TOKEN", the subject of the mailto: unsubscribe address, in any letter case
#: of the word and with any spacing a mail client may add; the token itself as it was.
_UNSUBSCRIBE_SUBJECT = re.compile(r"\s*unsubscribe\s+(\S+)\s*", re.IGNORECASE)


def token_in_subject(subject: str) -> str | None:
    """The token of an "unsubscribe TOKEN" subject (the mailto: unsubscribe), or None."""
    found = _UNSUBSCRIBE_SUBJECT.fullmatch(subject)
    return found[1] if found else None


@dataclass(frozen=True, slots=True)
class Site:
    """The public site at ``url``, whose personal links are signed with the first of
    ``keys`` and accepted under any of them (see ``digest.tokens``)."""

    url: str
    keys: tuple[str, ...]

    def page(self, path: str) -> str:
        return f"{self.url}{path}"

    def token(self, purpose: Purpose, public_id: str, issued: dt.datetime) -> str:
        return _token(self.keys, purpose, public_id, issued)

    def personal(self, path: str, purpose: Purpose, public_id: str, issued: dt.datetime) -> str:
        """``path`` on the site, with a token for ``purpose`` naming ``public_id``."""
        return f"{self.url}{path}?t={self.token(purpose, public_id, issued)}"

    def read(self, purpose: Purpose, token: str, now: dt.datetime) -> Token | None:
        """What a link's token says, or None unless it is genuine, for ``purpose`` and not
        expired at ``now``."""
        return read_token(self.keys, purpose, token, now)

    def links(
        self, date: dt.date, subscriber: Subscriber | None = None, issued: dt.datetime | None = None
    ) -> Links:
        """The links of ``date``'s edition: ``subscriber``'s own, or the public page's.

        ``issued`` is when the subscriber's tokens are made (none of them expires).
        """
        if subscriber is None:
            return Links(
                self.url,
                unsubscribe=self.page(UNSUBSCRIBE_PATH),
                view_in_browser=self.page(edition_path(date)),
                preferences=self.page(PREFERENCES_PATH),
            )
        if issued is None:
            raise ValueError("personal links need the time their tokens are issued")
        who = _public_id(subscriber)
        return Links(
            self.url,
            unsubscribe=self.personal(UNSUBSCRIBE_PATH, Purpose.UNSUBSCRIBE, who, issued),
            view_in_browser=self.personal(edition_path(date), Purpose.ARCHIVE, who, issued),
            preferences=self.personal(PREFERENCES_PATH, Purpose.PREFERENCES, who, issued),
        )

    def confirm_link(self, subscriber: Subscriber, issued: dt.datetime) -> str:
        """The link that confirms ``subscriber``'s sign-up, for ``CONFIRM_LIFETIME``."""
        return self.personal(CONFIRM_PATH, Purpose.CONFIRM, _public_id(subscriber), issued)

    def unsubscribe_mailto(self, sender: str, subscriber: Subscriber, issued: dt.datetime) -> str:
        """A mailto: unsubscribe address at the sender's domain; its subject is
        "unsubscribe TOKEN", which ``read_unsubscribe_subject`` reads back."""
        token = self.token(Purpose.UNSUBSCRIBE, _public_id(subscriber), issued)
        # A token is URL-safe base64: only its padding needs escaping in a URL.
        subject = f"unsubscribe%20{token.replace('=', '%3D')}"
        return f"{_unsubscribe_address(sender)}?subject={subject}"

    def read_unsubscribe_subject(self, subject: str, now: dt.datetime) -> Token | None:
        """The unsubscribe token in the subject of a mail sent to the mailto: address, if
        it is genuine: for a handler of inbound mail."""
        token = token_in_subject(subject)
        return None if token is None else self.read(Purpose.UNSUBSCRIBE, token, now)


@lru_cache(maxsize=64)
def _token(keys: tuple[str, ...], purpose: Purpose, public_id: str, issued: dt.datetime) -> str:
    # A message asks for its unsubscribe token twice, for the link and the mailto: address.
    return make_token(keys, purpose, public_id, issued)


@lru_cache(maxsize=16)
def _unsubscribe_address(sender: str) -> str:
    # Cached: every message of a send comes from the same sender.
    local, _, domain = parseaddr(sender)[1].partition("@")
    return f"mailto:{local}+unsubscribe@{domain}"


def _public_id(subscriber: Subscriber) -> str:
    if not subscriber.public_id:
        raise ValueError(f"{subscriber.email}: no public id, so no personal links")
    return subscriber.public_id
