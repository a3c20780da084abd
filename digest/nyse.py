"""The New York Stock Exchange's trading days, from its holiday rules (no network).

NYSE Rule 7.2: New Year's Day, Martin Luther King Jr. Day, Washington's Birthday, Good
Friday, Memorial Day, Juneteenth (from 2022), Independence Day, Labor Day, Thanksgiving and
Christmas. A holiday on a Sunday is kept on the Monday after, one on a Saturday on the Friday
before, except New Year's Day, which then has no weekday holiday (the Friday closes a year's
books). Early closes (13:00) are the day before Independence Day, the day after Thanksgiving
and Christmas Eve, each when it is a trading day. Pure: the date comes in.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from zoneinfo import ZoneInfo

#: The exchange's time zone: its sessions open and close in New York time.
TIMEZONE = ZoneInfo("America/New_York")

#: When the session ends on an early-close day, New York time.
EARLY_CLOSE = dt.time(13, 0)
#: When a regular session ends, New York time.
REGULAR_CLOSE = dt.time(16, 0)

_MONDAY, _THURSDAY, _FRIDAY, _SATURDAY, _SUNDAY = 0, 3, 4, 5, 6


def easter(year: int) -> dt.date:
    """Western Easter Sunday of ``year`` (the anonymous Gregorian algorithm)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    m = (32 + 2 * e + 2 * i - h - k) % 7
    n = (a + 11 * h + 22 * m) // 451
    month, day = divmod(h + m - 7 * n + 114, 31)
    return dt.date(year, month, day + 1)


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date:
    first = dt.date(year, month, 1)
    return first + dt.timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))


def _last_weekday(year: int, month: int, weekday: int) -> dt.date:
    following = dt.date(year + month // 12, month % 12 + 1, 1)
    last = following - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - weekday) % 7)


def _observed(day: dt.date) -> dt.date:
    if day.weekday() == _SATURDAY:
        return day - dt.timedelta(days=1)
    if day.weekday() == _SUNDAY:
        return day + dt.timedelta(days=1)
    return day


@cache
def holidays(year: int) -> frozenset[dt.date]:
    """The weekdays of ``year`` the exchange is closed."""
    days = {
        _nth_weekday(year, 1, _MONDAY, 3),  # Martin Luther King Jr. Day
        _nth_weekday(year, 2, _MONDAY, 3),  # Washington's Birthday
        easter(year) - dt.timedelta(days=2),  # Good Friday
        _last_weekday(year, 5, _MONDAY),  # Memorial Day
        _observed(dt.date(year, 7, 4)),
        _nth_weekday(year, 9, _MONDAY, 1),  # Labor Day
        _nth_weekday(year, 11, _THURSDAY, 4),  # Thanksgiving
        _observed(dt.date(year, 12, 25)),
    }
    new_year = dt.date(year, 1, 1)
    if new_year.weekday() != _SATURDAY:
        days.add(_observed(new_year))
    if year >= 2022:
        days.add(_observed(dt.date(year, 6, 19)))
    return frozenset(days)


def is_trading_day(day: dt.date) -> bool:
    """Whether the exchange holds a session on ``day``."""
    return day.weekday() < _SATURDAY and day not in holidays(day.year)


def is_early_close(day: dt.date) -> bool:
    """Whether ``day`` is a half-day: a session that ends at ``EARLY_CLOSE``."""
    return closing_time(day) == EARLY_CLOSE


def closing_time(day: dt.date) -> dt.time | None:
    """When the session of ``day`` ends (New York time); None when there is none."""
    if not is_trading_day(day):
        return None
    thanksgiving = _nth_weekday(day.year, 11, _THURSDAY, 4)
    early = {
        dt.date(day.year, 7, 3),
        thanksgiving + dt.timedelta(days=1),
        dt.date(day.year, 12, 24),
    }
    return EARLY_CLOSE if day in early else REGULAR_CLOSE
