"""When an edition is: its date in the edition's time zone, and the hours it covers.

Pure: the time comes in as ``now``.
"""

from __future__ import annotations

import datetime as dt

#: The edition covers this much time before its send time.
EDITION_SPAN = dt.timedelta(hours=24)


def edition_date(now: dt.datetime, timezone: dt.tzinfo) -> dt.date:
    """The date of the next edition to go out: today in the edition's time zone."""
    return now.astimezone(timezone).date()


def edition_window(
    date: dt.date, send_at: dt.time, timezone: dt.tzinfo
) -> tuple[dt.datetime, dt.datetime]:
    """The UTC interval an edition of ``date`` covers: the 24 hours before it is sent."""
    end = dt.datetime.combine(date, send_at, tzinfo=timezone).astimezone(dt.UTC)
    return end - EDITION_SPAN, end
