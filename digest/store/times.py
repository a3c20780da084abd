"""How the store keeps time: naive UTC in the database (SQLite has no time zones), aware
again when read. Without SQLAlchemy, for ``feed_rows`` and the light store too."""

from __future__ import annotations

import datetime as dt


def naive_utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def maybe_naive_utc(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else naive_utc(moment)


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    return None if moment is None else moment.replace(tzinfo=dt.UTC)
