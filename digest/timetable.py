"""When ``digest serve`` sends: the edition days, their send times, catching up a missed send,
and which sections a day's edition has.

Pure: the time comes in as ``now``, and what the ledger knows as a function. Send times are
wall-clock times in the edition's time zone, so 07:00 New York is 12:00 UTC in winter and
11:00 UTC in summer. A send time that a spring-forward skips (02:30) goes at the same
offset as before the change (03:30 daylight time); one that a fall-back repeats goes the
first time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from .models import Cadence, Calendar, Digest, Section, Timetable
from .nyse import TIMEZONE as EXCHANGE_TIMEZONE
from .nyse import closing_time, holidays, is_early_close, is_trading_day

#: How far back a missed send is looked for, and forward the next one: past any run of
#: closed days.
_HORIZON = 14

#: Fetch times are spread by up to this share of the interval, so many feeds of one host do
#: not all come due on the same second of every run.
FETCH_JITTER_SHARE = 0.1
FETCH_JITTER_MAX = dt.timedelta(minutes=5)


def is_edition_day(day: dt.date, timetable: Timetable) -> bool:
    """Whether an edition goes out on ``day`` (a date in the edition's time zone)."""
    return timetable.schedule is Cadence.DAILY or day.weekday() < 5


def send_time(day: dt.date, timetable: Timetable) -> dt.datetime:
    """When the edition of ``day`` goes out, in UTC."""
    local = dt.datetime.combine(day, timetable.send_at, tzinfo=timetable.timezone)
    return local.astimezone(dt.UTC)


def _send_times(start: dt.date, step: int, timetable: Timetable) -> list[dt.datetime]:
    days = (start + dt.timedelta(days=step * offset) for offset in range(_HORIZON + 1))
    return [send_time(day, timetable) for day in days if is_edition_day(day, timetable)]


def next_send(now: dt.datetime, timetable: Timetable) -> dt.datetime:
    """The first send time after ``now``."""
    today = now.astimezone(timetable.timezone).date()
    later = [when for when in _send_times(today, 1, timetable) if when > now]
    return later[0]


def previous_send(now: dt.datetime, timetable: Timetable) -> dt.datetime | None:
    """The latest send time at or before ``now`` (None when none was in the last two weeks)."""
    today = now.astimezone(timetable.timezone).date()
    earlier = [when for when in _send_times(today, -1, timetable) if when <= now]
    return earlier[0] if earlier else None


def edition_of(send: dt.datetime, timetable: Timetable) -> dt.date:
    """The date of the edition that goes out at ``send``."""
    return send.astimezone(timetable.timezone).date()


def sections_on(day: dt.date, timetable: Timetable) -> frozenset[Section]:
    """The sections the edition of ``day`` has: no Stocks when the exchange of ``calendar``
    holds no session that day (crypto and markets go out every edition day)."""
    if timetable.calendar is Calendar.NYSE and not is_trading_day(day):
        return frozenset(Section) - {Section.STOCKS}
    return frozenset(Section)


def market_note(day: dt.date, timetable: Timetable) -> str:
    """What the edition of ``day`` tells readers about the exchange's hours, or "".

    Under ``calendar: nyse``: on a weekday holiday, that there is no Stocks section; on a
    half-day, that the session ends early (the Stocks section is there: the morning
    session trades), in the tense of the send time, which may fall after the early close.
    """
    if timetable.calendar is not Calendar.NYSE:
        return ""
    if day in holidays(day.year):
        return "NYSE closed today: no Stocks section."
    if not is_early_close(day):
        return ""
    close = closing_time(day)
    assert close is not None
    closes = dt.datetime.combine(day, close, tzinfo=EXCHANGE_TIMEZONE)
    verb = "closes" if send_time(day, timetable) < closes else "closed"
    hour = close.hour % 12 or 12
    meridiem = "a.m." if close.hour < 12 else "p.m."
    return f"NYSE {verb} early today, at {hour}:{close.minute:02d} {meridiem} ET."


def with_market_note(digest: Digest, timetable: Timetable) -> Digest:
    """``digest`` with the market note of its date."""
    return replace(digest, market_note=market_note(digest.date, timetable))


@dataclass(frozen=True, slots=True)
class Missed:
    """A send that did not happen: the edition, when it was due, and what to do now."""

    date: dt.date
    due: dt.datetime
    late: dt.timedelta
    #: True: send it now (late by less than ``catch_up``); False: skip it.
    catch_up: bool


def missed_edition(
    now: dt.datetime, timetable: Timetable, done: Callable[[dt.date], bool]
) -> Missed | None:
    """The latest edition that was due by ``now`` and is not done (``done(date)``: every
    message of it went out or was settled), or None. It is caught up once when it is less
    than ``catch_up`` late; after that it is skipped. The ledger makes "once": a send that
    is done is never due again."""
    due = previous_send(now, timetable)
    if due is None:
        return None
    date = edition_of(due, timetable)
    if done(date):
        return None
    late = now - due
    return Missed(date, due, late, late <= timetable.catch_up)


def fetch_jitter(every: dt.timedelta) -> dt.timedelta:
    """How much each fetch time may move either way from the regular interval."""
    return min(every * FETCH_JITTER_SHARE, FETCH_JITTER_MAX)


def describe(timetable: Timetable) -> str:
    """The schedule in words: "weekdays at 07:00 (America/New_York), NYSE calendar"."""
    days = "every day" if timetable.schedule is Cadence.DAILY else "weekdays"
    text = f"{days} at {timetable.send_at:%H:%M} ({timetable.timezone})"
    if timetable.calendar is Calendar.NYSE:
        text += ", no Stocks section when the NYSE is closed"
    return text
