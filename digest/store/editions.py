"""The editions and deliveries tables: each day's edition, and who has been sent it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select

from ..addresses import address_key
from ..codec import decode_edition, encode_edition
from ..models import Digest, PendingDelivery
from . import schema as s
from ._database import Database, naive_utc
from .subscribers import subscriber_of


class EditionStore(Database):
    def save_edition(self, digest: Digest, now: dt.datetime) -> None:
        """Store ``digest`` as the edition of its date, replacing an unsent one."""
        payload = encode_edition(digest)
        with self.begin() as c:
            row = c.execute(select(s.editions.c.id).where(s.editions.c.date == digest.date)).first()
            if row is None:
                c.execute(
                    s.editions.insert().values(
                        date=digest.date, built_at=naive_utc(now), payload=payload
                    )
                )
            else:
                c.execute(
                    s.editions.update()
                    .where(s.editions.c.id == row.id)
                    .values(built_at=naive_utc(now), payload=payload)
                )

    def edition_is_sent(self, date: dt.date) -> bool:
        """True once a message of ``date``'s edition went out (it is frozen from then on)."""
        return date in self.sent_dates(date)

    def sent_dates(self, *dates: dt.date) -> set[dt.date]:
        """The dates (of ``dates``, or of all editions) whose edition has gone out to someone."""
        query = (
            select(s.editions.c.date)
            .select_from(s.deliveries.join(s.editions))
            .where(s.deliveries.c.status == "sent")
            .distinct()
        )
        if dates:
            query = query.where(s.editions.c.date.in_(dates))
        with self.begin() as c:
            return {row.date for row in c.execute(query)}

    def load_edition(self, date: dt.date) -> Digest | None:
        with self.begin() as c:
            payload = c.execute(
                select(s.editions.c.payload).where(s.editions.c.date == date)
            ).scalar()
        return None if payload is None else decode_edition(payload)

    def edition_dates(self) -> list[dt.date]:
        """Dates of stored editions, newest first."""
        with self.begin() as c:
            rows = c.execute(select(s.editions.c.date).order_by(s.editions.c.date.desc()))
            return [row.date for row in rows]

    def plan_deliveries(self, date: dt.date, message_id: Callable[[str], str]) -> int:
        """Record one pending delivery per active subscriber not yet planned; return how many.

        ``message_id(email)`` gives each message its id, fixed here so a resend after a
        crash carries the same one.
        """
        with self.begin() as c:
            edition_id = c.execute(
                select(s.editions.c.id).where(s.editions.c.date == date)
            ).scalar_one()
            planned = select(s.deliveries.c.subscriber_id).where(
                s.deliveries.c.edition_id == edition_id
            )
            rows = c.execute(
                select(s.subscribers.c.id, s.subscribers.c.email).where(
                    s.subscribers.c.active, s.subscribers.c.id.not_in(planned)
                )
            ).all()
            if rows:
                c.execute(
                    s.deliveries.insert(),
                    [
                        {
                            "edition_id": edition_id,
                            "subscriber_id": row.id,
                            "status": "pending",
                            "message_id": message_id(row.email),
                            "attempts": 0,
                        }
                        for row in rows
                    ],
                )
            return len(rows)

    def pending_deliveries(self, date: dt.date) -> list[PendingDelivery]:
        """Deliveries not yet sent, to subscribers who are still active."""
        query = (
            select(s.subscribers, s.deliveries.c.message_id)
            .select_from(s.deliveries.join(s.editions).join(s.subscribers))
            .where(
                s.editions.c.date == date,
                s.deliveries.c.status != "sent",
                s.subscribers.c.active,
            )
            .order_by(s.subscribers.c.email)
        )
        with self.begin() as c:
            return [PendingDelivery(subscriber_of(row), row.message_id) for row in c.execute(query)]

    def mark_delivery(
        self, date: dt.date, email: str, now: dt.datetime, error: str | None = None
    ) -> None:
        """Record that the SMTP server accepted (``error`` None) or refused a message."""
        with self.begin() as c:
            edition_id = select(s.editions.c.id).where(s.editions.c.date == date).scalar_subquery()
            subscriber_id = (
                select(s.subscribers.c.id)
                .where(s.subscribers.c.email_key == address_key(email))
                .scalar_subquery()
            )
            values: dict[str, Any] = {"attempts": s.deliveries.c.attempts + 1, "error": error}
            if error is None:
                values.update(status="sent", sent_at=naive_utc(now))
            else:
                values["status"] = "failed"
            c.execute(
                s.deliveries.update()
                .where(
                    s.deliveries.c.edition_id == edition_id,
                    s.deliveries.c.subscriber_id == subscriber_id,
                )
                .values(**values)
            )

    def delivery_counts(self, date: dt.date) -> dict[str, int]:
        """How many deliveries of ``date``'s edition are in each status."""
        with self.begin() as c:
            rows = c.execute(
                select(s.deliveries.c.status, func.count())
                .select_from(s.deliveries.join(s.editions))
                .where(s.editions.c.date == date)
                .group_by(s.deliveries.c.status)
            )
            return {status: count for status, count in rows}
