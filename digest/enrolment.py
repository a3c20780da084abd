"""What adding or importing an address may do to the subscriber already there.

The rule, in one place (``decide_enrolment``); ``digest subscribers add`` and ``import`` ask it
for every address and the store writes its answer:

- A new address is added: active, or unsubscribed when an imported file says so (an export
  carried into a new database keeps its unsubscribes).
- **Unsubscribed stays unsubscribed.** No add or import makes an unsubscribed address active
  again, whatever it says; only the subscriber's own action can (``Store.resubscribe``).
- An address that is already there changes only when asked (``update``): then its name and
  watchlist are replaced by those given (an empty one keeps what is there). Its letter case
  and whether it gets mail never change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from enum import StrEnum

from .models import Subscriber


class Outcome(StrEnum):
    """What became of one address."""

    ADDED = "added"
    #: New, and unsubscribed as the imported file says.
    ADDED_UNSUBSCRIBED = "added unsubscribed"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    #: Unsubscribed before, and so it stays (its details may have been updated).
    SKIPPED_UNSUBSCRIBED = "skipped unsubscribed"


@dataclass(frozen=True, slots=True)
class SubscriberRecord:
    """A subscriber as the store has it, with when they unsubscribed."""

    subscriber: Subscriber
    #: Set when they unsubscribed; None while active (and for some old unsubscribed rows).
    unsubscribed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Enrolment:
    """The rule's answer for one address: what to write, and what to tell the user."""

    #: The address as stored: the existing record's (its letter case wins) or the new one.
    email: str
    outcome: Outcome
    #: The record to write, or None to leave the store as it is.
    write: SubscriberRecord | None
    #: Details that ``write`` changes ("name", "watchlist").
    changed: tuple[str, ...] = ()
    #: Details that differ but were left alone, because no update was asked for.
    ignored: tuple[str, ...] = ()
    #: When a skipped address unsubscribed.
    unsubscribed_at: dt.datetime | None = None


def decide_enrolment(
    existing: SubscriberRecord | None, incoming: Subscriber, now: dt.datetime, *, update: bool
) -> Enrolment:
    """What adding ``incoming`` may do, given the record for its address (or None)."""
    if existing is None:
        if incoming.active:
            return Enrolment(incoming.email, Outcome.ADDED, SubscriberRecord(incoming))
        return Enrolment(
            incoming.email,
            Outcome.ADDED_UNSUBSCRIBED,
            SubscriberRecord(incoming, unsubscribed_at=now),
            unsubscribed_at=now,
        )
    current = existing.subscriber
    wanted = replace(
        current,
        name=incoming.name or current.name,
        watchlist=incoming.watchlist or current.watchlist,
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
    write = replace(existing, subscriber=wanted) if changed else None
    if not current.active:
        return Enrolment(
            current.email,
            Outcome.SKIPPED_UNSUBSCRIBED,
            write,
            changed,
            ignored,
            existing.unsubscribed_at,
        )
    outcome = Outcome.UPDATED if changed else Outcome.UNCHANGED
    return Enrolment(current.email, outcome, write, changed, ignored)
