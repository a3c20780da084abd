"""The subscribers table: who gets the edition, and their watchlists.

An address is found by its key (``address_key``), so every lookup ignores letter case and
one address is one row. What an add or import may change is decided by
``decide_enrolment``; this module only writes its answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Integer, String, cast, select

from ..addresses import address_key
from ..enrolment import Enrolment, Outcome, SubscriberRecord, decide_enrolment
from ..models import Subscriber
from . import schema as s
from ._database import Database, aware, maybe_naive_utc, naive_utc


class SubscriberStore(Database):
    def enrol(
        self, people: Iterable[Subscriber], now: dt.datetime, *, update: bool = False
    ) -> list[Enrolment]:
        """Add ``people`` as the enrolment rule allows, all in one transaction.

        Never makes an unsubscribed address active again; with ``update`` the name and
        watchlist of addresses already there are replaced by those given.
        """
        answers = []
        with self.begin() as c:
            for person in people:
                key = address_key(person.email)
                row = _row(c, key)
                answer = decide_enrolment(
                    None if row is None else record_of(row), person, now, update=update
                )
                if answer.write is not None:
                    _write(c, row, key, answer.write, now)
                answers.append(answer)
        return answers

    def add_subscriber(
        self, subscriber: Subscriber, now: dt.datetime, *, update: bool = False
    ) -> bool:
        """Add ``subscriber`` as ``enrol`` does; True when the address is new."""
        (answer,) = self.enrol([subscriber], now, update=update)
        return answer.outcome in (Outcome.ADDED, Outcome.ADDED_UNSUBSCRIBED)

    def resubscribe(self, email: str, now: dt.datetime) -> bool:
        """Make an unsubscribed address active again; False if unknown or already active.

        Only for the subscriber's own request (a confirmed sign-up): adding and importing
        never do this, see ``digest.enrolment``.
        """
        with self.begin() as c:
            result = c.execute(
                s.subscribers.update()
                .where(s.subscribers.c.email_key == address_key(email), ~s.subscribers.c.active)
                .values(active=True, unsubscribed_at=None)
            )
            return result.rowcount > 0

    def remove_subscriber(self, email: str) -> str | None:
        """Delete ``email`` (its deliveries stay in the ledger, without it); the address as
        it was stored, or None."""
        key = address_key(email)
        with self.begin() as c:
            row = _row(c, key)
            if row is None:
                return None
            c.execute(s.subscribers.delete().where(s.subscribers.c.id == row.id))
            bump_version(c)
            return str(row.email)

    def unsubscribe(self, email: str, now: dt.datetime) -> bool:
        """Mark ``email`` unsubscribed, keeping the record; False if unknown or inactive."""
        with self.begin() as c:
            result = c.execute(
                s.subscribers.update()
                .where(s.subscribers.c.email_key == address_key(email), s.subscribers.c.active)
                .values(active=False, unsubscribed_at=naive_utc(now))
            )
            if result.rowcount:
                bump_version(c)
            return result.rowcount > 0

    def subscribers_version(self) -> int:
        """A number that changes whenever someone stops getting mail: a sending run reads it
        often and looks again at its recipients only when it moved."""
        with self.begin() as c:
            value = c.execute(select(s.meta.c.value).where(s.meta.c.key == _VERSION)).scalar()
        return int(value or 0)

    def subscribers(self, active_only: bool = False) -> list[Subscriber]:
        query = select(s.subscribers).order_by(s.subscribers.c.email)
        if active_only:
            query = query.where(s.subscribers.c.active)
        with self.begin() as c:
            return [subscriber_of(row) for row in c.execute(query)]

    def subscriber(self, email: str) -> Subscriber | None:
        """The subscriber with ``email``, in any letter case, or None."""
        with self.begin() as c:
            row = _row(c, address_key(email))
        return None if row is None else subscriber_of(row)


_VERSION = "subscribers_version"


def bump_version(c: Connection) -> None:
    """Say, in the caller's transaction, that someone stopped getting mail."""
    changed = c.execute(
        s.meta.update()
        .where(s.meta.c.key == _VERSION)
        .values(value=cast(cast(s.meta.c.value, Integer) + 1, String))
    )
    if not changed.rowcount:
        c.execute(s.meta.insert().values(key=_VERSION, value="1"))


def _row(c: Connection, key: str) -> Any:
    return c.execute(select(s.subscribers).where(s.subscribers.c.email_key == key)).first()


def _write(c: Connection, row: Any, key: str, record: SubscriberRecord, now: dt.datetime) -> None:
    person = record.subscriber
    details = {"name": person.name, "watchlist": " ".join(person.watchlist)}
    if row is None:
        c.execute(
            s.subscribers.insert().values(
                email=person.email,
                email_key=key,
                active=person.active,
                created_at=naive_utc(now),
                unsubscribed_at=maybe_naive_utc(record.unsubscribed_at),
                **details,
            )
        )
    else:
        # Only the details: whether an address gets mail is never changed by enrolling it.
        c.execute(s.subscribers.update().where(s.subscribers.c.id == row.id).values(**details))


def subscriber_of(row: Any) -> Subscriber:
    return Subscriber(row.email, row.name, row.active, tuple(row.watchlist.split()))


def record_of(row: Any) -> SubscriberRecord:
    return SubscriberRecord(subscriber_of(row), aware(row.unsubscribed_at))
