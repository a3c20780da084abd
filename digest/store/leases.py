"""The leases table: which process may do a job only one may do (sending the edition).

A lease is held until ``expires_at``; its holder renews it well before, and anyone takes it
once it has passed. Taking and renewing are one conditional write each, so two processes
racing for a free lease cannot both win, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError

from . import schema as s
from ._database import Database
from .times import aware, naive_utc

_l = s.leases.c


class LeaseStore(Database):
    def take_lease(self, name: str, holder: str, now: dt.datetime, ttl: dt.timedelta) -> bool:
        """Take or renew the lease ``name`` for ``holder`` until ``now + ttl``; False when
        someone else holds it and has not let it expire."""
        expires = naive_utc(now + ttl)
        with self.begin() as c:
            taken = c.execute(
                s.leases.update()
                .where(_l.name == name, or_(_l.holder == holder, _l.expires_at <= naive_utc(now)))
                .values(holder=holder, taken_at=naive_utc(now), expires_at=expires)
            )
            if taken.rowcount == 1:
                return True
            if c.execute(select(_l.name).where(_l.name == name)).first() is not None:
                return False
        try:
            with self.begin() as c:
                c.execute(
                    s.leases.insert().values(
                        name=name, holder=holder, taken_at=naive_utc(now), expires_at=expires
                    )
                )
        except IntegrityError:  # another process inserted it first
            return False
        return True

    def release_lease(self, name: str, holder: str) -> None:
        """Give up the lease ``name`` if ``holder`` has it, so another may take it at once."""
        with self.begin() as c:
            c.execute(s.leases.delete().where(_l.name == name, _l.holder == holder))

    def lease_holder(self, name: str, now: dt.datetime) -> tuple[str, dt.datetime] | None:
        """Who holds the lease ``name`` and until when; None when it is free or expired."""
        with self.begin() as c:
            row = c.execute(
                select(_l.holder, _l.expires_at).where(
                    _l.name == name, _l.expires_at > naive_utc(now)
                )
            ).first()
        if row is None:
            return None
        until = aware(row.expires_at)
        assert until is not None
        return row.holder, until
