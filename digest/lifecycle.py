"""A subscriber's life: the states an address is in, and what moves it from one to another.

::

    (new) ─ sign-up on the site, or add ─► pending ─ their confirm link ─► active
    (new) ─ add --confirmed (the operator vouches for their consent) ───► active

    active, pending ─ their unsubscribe link ─► unsubscribed
    any but complained ─ a bounce ────────────► bounced
    any ─ a spam complaint ───────────────────► complained

    unsubscribed, bounced, complained ─ their own, newer confirm link ─► active

Only an active address gets editions. Unsubscribed, bounced and complained are the
suppressed states: no add or import leaves them, only the subscriber's own confirmation of a
sign-up made after they got there. Each function here is the rule for one kind of event: it
takes the state an address is in and returns a ``Transition`` (the state after it, why it
changed, what to mail); the store writes it and keeps every change in the address's history.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum

from .models import DeliveryRecord, Subscriber


class State(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"

    @property
    def gets_mail(self) -> bool:
        """Whether the address is sent editions."""
        return self is State.ACTIVE

    @property
    def suppressed(self) -> bool:
        """Whether only the subscriber's own confirmation may make the address active."""
        return self in _SUPPRESSION_RANK


#: A stronger suppression replaces a weaker one, never the other way round: a complaint
#: after an unsubscribe is kept, an unsubscribe after a complaint changes nothing.
_SUPPRESSION_RANK = {State.UNSUBSCRIBED: 1, State.BOUNCED: 2, State.COMPLAINED: 3}


class Mail(StrEnum):
    """A message an event sends the address besides the editions."""

    #: The link that confirms a sign-up.
    CONFIRMATION = "confirmation"
    #: The first message of a confirmed subscription.
    WELCOME = "welcome"


@dataclass(frozen=True, slots=True)
class Transition:
    """What one event does to an address."""

    #: The state after the event: the one before when nothing changes, None for an address
    #: the event cannot apply to (unknown, or a link older than its last change).
    state: State | None
    #: Why the state changed, as the history shows it; None when it did not.
    why: str | None = None
    mail: Mail | None = None

    @property
    def refused(self) -> bool:
        return self.state is None


REFUSED = Transition(None)


@dataclass(frozen=True, slots=True)
class Notice:
    """A message to mail one subscriber besides the editions."""

    mail: Mail
    #: As stored: its public id is what the message's links name.
    subscriber: Subscriber


@dataclass(frozen=True, slots=True)
class Applied:
    """An event as the store wrote it: the subscriber after it, and the rule's answer."""

    subscriber: Subscriber
    transition: Transition

    @property
    def notice(self) -> Notice | None:
        """The message the event sends, if any."""
        mail = self.transition.mail
        return None if mail is None else Notice(mail, self.subscriber)


@dataclass(frozen=True, slots=True)
class Change:
    """One line of a subscriber's history: when they entered which state, and why."""

    at: dt.datetime
    state: State
    why: str


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """A subscriber as the store has it: details, state, and since when."""

    subscriber: Subscriber
    state: State = State.ACTIVE
    #: When the state last changed; None for one that was never recorded.
    since: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class SubscriberReport:
    """Everything ``digest subscribers show`` prints about one address."""

    record: SubscriberRecord
    #: Oldest first.
    history: tuple[Change, ...]
    #: Newest edition first.
    deliveries: tuple[DeliveryRecord, ...]


def sign_up(current: State | None) -> Transition:
    """Someone asked on the site to get the edition at an address in state ``current``.

    Anyone can type any address, so nothing but a confirmation link is sent, and an address
    already active is sent nothing: what the site answers is the same in every case.
    """
    if current is None:
        return Transition(State.PENDING, "signed up on the web site", Mail.CONFIRMATION)
    if current is State.ACTIVE:
        return Transition(current)
    # Pending: the link again. Suppressed: stays so until their own confirmation.
    return Transition(current, mail=Mail.CONFIRMATION)


def confirm(current: State | None, since: dt.datetime | None, issued: dt.datetime) -> Transition:
    """The address's owner followed a genuine confirm link issued at ``issued``.

    It makes the address active unless it already is. A link issued before the address's
    last change is refused: one from before they unsubscribed must not bring them back.
    """
    if current is None:
        return REFUSED
    if current is State.ACTIVE:
        return Transition(current)
    # Tokens carry whole seconds; a link sent in the second of the change is not older.
    if since is not None and issued < since.replace(microsecond=0):
        return REFUSED
    why = (
        "confirmed with their own link"
        if current is State.PENDING
        else f"subscribed again with their own confirm link (was {current})"
    )
    return Transition(State.ACTIVE, why, Mail.WELCOME)


def leave(current: State | None, to: State, why: str) -> Transition:
    """The address stops getting mail: ``to`` is unsubscribed, bounced or complained.

    A weaker suppression does not replace a stronger one (see ``_SUPPRESSION_RANK``).
    """
    if not to.suppressed:
        raise ValueError(f"{to} is not a state an address leaves to")
    if current is None:
        return REFUSED
    if _SUPPRESSION_RANK.get(current, 0) >= _SUPPRESSION_RANK[to]:
        return Transition(current)
    return Transition(to, why)


def enrol(current: State | None, listed: State | None, *, confirmed: bool) -> Transition:
    """The operator adds or imports an address in state ``current``.

    ``listed`` is the status a file gives it (None: no status, or from ``add``) and
    ``confirmed`` whether the operator vouches for its owner's consent (``--confirmed``).
    A new address is added active when vouched for, in a suppressed state a file lists,
    and otherwise pending, with a confirmation to send ("pending" in a file stays so: its
    owner never confirmed). An address already there changes only from pending to active
    when vouched for; one still pending is sent its confirmation again. A suppressed one
    never changes.
    """
    wants_mail = listed in (None, State.ACTIVE, State.PENDING)
    vouched = confirmed and listed in (None, State.ACTIVE)
    if current is None:
        if listed is not None and listed.suppressed:
            return Transition(listed, f"imported as {listed}")
        if vouched:
            return Transition(State.ACTIVE, "added by the operator, who vouched for consent")
        return Transition(
            State.PENDING,
            "added by the operator; waiting for their confirmation",
            Mail.CONFIRMATION,
        )
    if current is State.PENDING and wants_mail:
        if vouched:
            return Transition(State.ACTIVE, "confirmed by the operator, who vouched for consent")
        return Transition(current, mail=Mail.CONFIRMATION)
    return Transition(current)
