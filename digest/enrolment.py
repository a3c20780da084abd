"""What adding or importing an address may do, to a new one and to the subscriber already there.

The rule, in one place (``decide_enrolment``); ``digest subscribers add`` and ``import`` ask it
for every address and the store writes its answer. Its state is ``lifecycle.enrol``'s to
decide; this module adds the details:

- A new address is added pending, with a confirmation to mail, unless the operator vouches
  for its owner's consent (``confirmed``: then active), or a file lists it unsubscribed,
  bounced or complained (an export carried into a new database keeps them).
- **Suppressed stays suppressed.** No add or import makes an unsubscribed, bounced or
  complained address active again, whatever it says; only the subscriber's own confirmation
  can (see ``digest.lifecycle``).
- An address that is already there changes its details only when asked (``update``): then
  its name and watchlist are replaced by those given (an empty one keeps what is there). Its
  letter case never changes, and its state only from pending to active when vouched for.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from .lifecycle import Notice, State, SubscriberRecord, Transition, enrol
from .models import Subscriber

__all__ = ["Enrolment", "Entry", "Outcome", "SubscriberRecord", "decide_enrolment"]


class Outcome(StrEnum):
    """What became of one address."""

    #: New, and active: the operator vouched for its owner's consent.
    ADDED = "added"
    #: New, and pending: a confirmation is to be mailed.
    ADDED_PENDING = "added pending"
    #: New, and unsubscribed, bounced or complained, as the imported file says.
    ADDED_SUPPRESSED = "added suppressed"
    #: Was pending, and active now: the operator vouched for its owner's consent.
    CONFIRMED = "confirmed"
    #: Was pending, and still is (its confirmation may be mailed again).
    STILL_PENDING = "still pending"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    #: Unsubscribed, bounced or complained before, and so it stays (its details may have
    #: been updated).
    SKIPPED_SUPPRESSED = "skipped suppressed"


@dataclass(frozen=True, slots=True)
class Entry:
    """An address as ``add`` or an imported file gives it."""

    subscriber: Subscriber
    #: The status a file lists (None: none, as from ``add``). ``subscriber.active`` is not
    #: read: whether an address gets mail is the rule's to say.
    listed: State | None = None

    @classmethod
    def of(cls, subscriber: Subscriber) -> Entry:
        """``subscriber`` as an entry: one that is not active is listed unsubscribed."""
        return cls(subscriber, None if subscriber.active else State.UNSUBSCRIBED)


@dataclass(frozen=True, slots=True)
class Enrolment:
    """The rule's answer for one address: what to write, and what to tell the user."""

    #: The address as stored: the existing record's (its letter case wins) or the new one.
    email: str
    outcome: Outcome
    #: The subscriber with the details to store; once the store has written it, as stored.
    subscriber: Subscriber
    #: The state the address enters (``why`` None when it keeps the one it has), and
    #: whether to mail it a confirmation.
    transition: Transition
    #: Details that change ("name", "watchlist").
    changed: tuple[str, ...] = ()
    #: Details that differ but were left alone, because no update was asked for.
    ignored: tuple[str, ...] = ()
    #: Since when an address already there has been in its state.
    since: dt.datetime | None = None

    @property
    def state(self) -> State:
        assert self.transition.state is not None, "enrolling never refuses"
        return self.transition.state

    @property
    def new(self) -> bool:
        return self.outcome in (Outcome.ADDED, Outcome.ADDED_PENDING, Outcome.ADDED_SUPPRESSED)

    @property
    def notice(self) -> Notice | None:
        """The confirmation to mail, if any."""
        mail = self.transition.mail
        return None if mail is None else Notice(mail, self.subscriber)


def decide_enrolment(
    existing: SubscriberRecord | None,
    incoming: Entry,
    now: dt.datetime,
    *,
    update: bool,
    confirmed: bool,
) -> Enrolment:
    """What adding ``incoming`` may do, given the record for its address (or None)."""
    transition = enrol(
        None if existing is None else existing.state, incoming.listed, confirmed=confirmed
    )
    if existing is None:
        state = transition.state
        outcome = (
            Outcome.ADDED
            if state is State.ACTIVE
            else Outcome.ADDED_PENDING
            if state is State.PENDING
            else Outcome.ADDED_SUPPRESSED
        )
        person = replace(incoming.subscriber, active=state is State.ACTIVE)
        return Enrolment(person.email, outcome, person, transition, since=now)
    current = existing.subscriber
    wanted = replace(
        current,
        name=incoming.subscriber.name or current.name,
        watchlist=incoming.subscriber.watchlist or current.watchlist,
    )
    differs = tuple(
        detail
        for detail, old, new in (
            ("name", current.name, wanted.name),
            ("watchlist", current.watchlist, wanted.watchlist),
        )
        if old != new
    )
    changed = differs if update else ()
    ignored = () if update else differs
    since: dt.datetime | None = existing.since
    if transition.why is not None:
        since = now
        wanted = replace(wanted, active=transition.state is State.ACTIVE)
    if not changed:
        wanted = replace(wanted, name=current.name, watchlist=current.watchlist)
    if existing.state.suppressed:
        outcome = Outcome.SKIPPED_SUPPRESSED
    elif existing.state is State.PENDING:
        outcome = Outcome.CONFIRMED if transition.state is State.ACTIVE else Outcome.STILL_PENDING
    else:
        outcome = Outcome.UPDATED if changed else Outcome.UNCHANGED
    return Enrolment(current.email, outcome, wanted, transition, changed, ignored, since)
