"""The messages besides the editions: the confirmation of a sign-up, and the welcome.

``make_notice`` is the one place that decides what they contain. They are composed as an
edition is (``message.compose``: every header set with ``set_header``), from the edition's
sender. The confirmation carries only its link: the address is not on the list, so it has no
unsubscribe headers and nothing to unsubscribe from. The welcome is the list's first message
to a new subscriber and has them, as every edition does.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from .lifecycle import Mail, Notice
from .message import Publisher, unsubscribe_headers
from .models import Email
from .site import PREFERENCES_PATH, UNSUBSCRIBE_PATH
from .tokens import CONFIRM_LIFETIME, Purpose


@dataclass(frozen=True, slots=True)
class Link:
    label: str
    url: str


def make_notice(notice: Notice, publisher: Publisher, now: dt.datetime, schedule: str) -> Email:
    """The ``notice`` message to its subscriber, its links' tokens issued at ``now``.

    ``schedule`` says when editions come ("every morning at 07:00 (America/New_York)").
    """
    person = notice.subscriber
    site = publisher.site
    title = publisher.title
    headers: tuple[tuple[str, str], ...] = ()
    if notice.mail is Mail.CONFIRMATION:
        subject = f"Confirm your subscription to {title}"
        context: dict[str, Any] = {
            "heading": "Confirm your subscription",
            "paragraphs": [
                f"Someone, hopefully you, asked for {title} to be sent to {person.email}.",
                "To confirm, open the link below and press the button on the page. "
                f"It works for {CONFIRM_LIFETIME.days} days.",
                "If it was not you, ignore this email: without a confirmation nothing more "
                "is sent to this address.",
            ],
            "button": Link("Confirm my subscription", site.confirm_link(person, now)),
            "footer_links": [Link(title, site.page("/"))],
        }
    else:
        subject = f"Welcome to {title}"
        unsubscribe = site.personal(UNSUBSCRIBE_PATH, Purpose.UNSUBSCRIBE, person.public_id, now)
        preferences = site.personal(PREFERENCES_PATH, Purpose.PREFERENCES, person.public_id, now)
        context = {
            "heading": subject,
            "paragraphs": [
                f"You are subscribed: {title} comes {schedule}, with the day's stock and "
                "crypto headlines.",
                "Every edition ends with a link to unsubscribe in one click.",
            ],
            "button": Link("Read the latest edition", site.page("/")),
            "footer_links": [Link("Preferences", preferences), Link("Unsubscribe", unsubscribe)],
        }
        headers = unsubscribe_headers(
            unsubscribe,
            site.unsubscribe_mailto(publisher.sender, person, now),
            publisher.list_id,
        )
    context.update(title=title, postal_address=publisher.postal_address)
    environment = publisher.environment
    return Email(
        recipient=person.email,
        subject=subject,
        html=environment.get_template("notice.html.j2").render(context),
        text=environment.get_template("notice.txt.j2").render(context),
        message_id=_message_id(notice.mail, publisher.sender),
        headers=headers,
    )


def _message_id(mail: Mail, sender: str) -> str:
    # Each one is its own message: asking twice for a confirmation gets two.
    domain = parseaddr(sender)[1].rpartition("@")[2] or "localhost"
    return f"<{mail}.{secrets.token_hex(10)}@{domain}>"
