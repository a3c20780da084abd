"""The subscribers table: who gets the edition, and their watchlists.

An address is found by its key (``address_key``), so every lookup ignores letter case and
one address is one row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import Connection, select

from ..addresses import address_key
from ..models import Subscriber
from . import schema as s
from ._database import Database, naive_utc


class SubscriberStore(Database):
    def add_subscriber(self, subscriber: Subscriber, now: dt.datetime) -> bool:
        """Add or reactivate ``subscriber``; False when it was already active."""
        key = address_key(subscriber.email)
        with self.begin() as c:
            row = _row(c, key)
            if row is None:
                c.execute(
                    s.subscribers.insert().values(
                        email=subscriber.email,
                        email_key=key,
                        name=subscriber.name,
                        active=True,
                        created_at=naive_utc(now),
                        watchlist=" ".join(subscriber.watchlist),
                    )
                )
                return True
            values: dict[str, Any] = {"active": True, "unsubscribed_at": None}
            if subscriber.name:
                values["name"] = subscriber.name
            if subscriber.watchlist:
                values["watchlist"] = " ".join(subscriber.watchlist)
            c.execute(s.subscribers.update().where(s.subscribers.c.id == row.id).values(**values))
            return not row.active

    def remove_subscriber(self, email: str) -> str | None:
        """Delete ``email`` and its deliveries; the address as it was stored, or None."""
        key = address_key(email)
        with self.begin() as c:
            row = _row(c, key)
            if row is None:
                return None
            c.execute(s.subscribers.delete().where(s.subscribers.c.id == row.id))
            return str(row.email)

    def unsubscribe(self, email: str, now: dt.datetime) -> bool:
        """Mark ``email`` unsubscribed, keeping the record; False if unknown or inactive."""
        with self.begin() as c:
            result = c.execute(
                s.subscribers.update()
                .where(s.subscribers.c.email_key == address_key(email), s.subscribers.c.active)
                .values(active=False, unsubscribed_at=naive_utc(now))
            )
            return result.rowcount > 0

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


def _row(c: Connection, key: str) -> Any:
    return c.execute(select(s.subscribers).where(s.subscribers.c.email_key == key)).first()


def subscriber_of(row: Any) -> Subscriber:
    return Subscriber(row.email, row.name, row.active, tuple(row.watchlist.split()))
