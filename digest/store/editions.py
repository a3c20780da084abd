"""The editions table: each day's edition, stored whole."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ..codec import decode_edition, encode_edition
from ..models import Digest
from . import schema as s
from ._database import Database
from .times import naive_utc


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
        # One indexed look-up per edition (deliveries_status), not a scan of every delivery.
        went_out = (
            select(s.deliveries.c.id)
            .where(s.deliveries.c.edition_id == s.editions.c.id, s.deliveries.c.status == "sent")
            .exists()
        )
        query = select(s.editions.c.date).where(went_out)
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
