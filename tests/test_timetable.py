"""The send calendar of ``digest serve``, with the clock passed in."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from digest.models import Cadence, Calendar, Section, Timetable
from digest.nyse import closing_time, easter, holidays, is_trading_day
from digest.timetable import (
    fetch_jitter,
    market_note,
    missed_edition,
    next_send,
    previous_send,
    sections_on,
    send_time,
)

NEW_YORK = ZoneInfo("America/New_York")
SEVEN = Timetable(dt.time(7, 0), NEW_YORK)


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=dt.UTC)


def test_seven_in_new_york_moves_in_utc_across_the_spring_change() -> None:
    # 2027-03-14: clocks go from 02:00 EST to 03:00 EDT.
    assert send_time(dt.date(2027, 3, 13), SEVEN) == utc(2027, 3, 13, 12, 0)
    assert send_time(dt.date(2027, 3, 14), SEVEN) == utc(2027, 3, 14, 11, 0)
    after_saturday = utc(2027, 3, 13, 12, 0, 1)
    assert next_send(after_saturday, SEVEN) == utc(2027, 3, 14, 11, 0)


def test_seven_in_new_york_moves_in_utc_across_the_autumn_change() -> None:
    # 2026-11-01: clocks go from 02:00 EDT back to 01:00 EST.
    assert next_send(utc(2026, 10, 31, 11, 0), SEVEN) == utc(2026, 11, 1, 12, 0)
    assert next_send(utc(2026, 11, 1, 12, 0), SEVEN) == utc(2026, 11, 2, 12, 0)


def test_a_send_time_the_spring_change_skips_goes_once_at_the_old_offset() -> None:
    early = Timetable(dt.time(2, 30), NEW_YORK)
    # 02:30 does not exist on 2027-03-14: it goes at 07:30 UTC (03:30 daylight time).
    assert send_time(dt.date(2027, 3, 14), early) == utc(2027, 3, 14, 7, 30)
    assert next_send(utc(2027, 3, 14, 7, 0), early) == utc(2027, 3, 14, 7, 30)


def test_a_send_time_the_autumn_change_repeats_goes_the_first_time_only() -> None:
    early = Timetable(dt.time(1, 30), NEW_YORK)
    first = send_time(dt.date(2026, 11, 1), early)
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT
    assert next_send(first, early) == utc(2026, 11, 2, 6, 30)  # next day, 01:30 EST


def test_weekdays_skip_the_weekend() -> None:
    weekdays = Timetable(dt.time(7, 0), NEW_YORK, Cadence.WEEKDAYS)
    friday_after = utc(2026, 12, 4, 13, 0)
    assert next_send(friday_after, weekdays) == utc(2026, 12, 7, 12, 0)  # Monday
    assert next_send(friday_after, SEVEN) == utc(2026, 12, 5, 12, 0)  # daily: Saturday
    sunday = utc(2026, 12, 6, 15, 0)
    assert previous_send(sunday, weekdays) == utc(2026, 12, 4, 12, 0)


def test_nyse_holidays_of_2026_and_2027() -> None:
    assert sorted(holidays(2026)) == [
        dt.date(2026, 1, 1),
        dt.date(2026, 1, 19),
        dt.date(2026, 2, 16),
        dt.date(2026, 4, 3),
        dt.date(2026, 5, 25),
        dt.date(2026, 6, 19),
        dt.date(2026, 7, 3),  # the 4th is a Saturday
        dt.date(2026, 9, 7),
        dt.date(2026, 11, 26),
        dt.date(2026, 12, 25),
    ]
    # 2028-01-01 is a Saturday: no holiday on Friday 2027-12-31.
    assert dt.date(2027, 12, 31) not in holidays(2027)
    assert is_trading_day(dt.date(2027, 12, 31))
    assert dt.date(2027, 12, 24) in holidays(2027)  # Christmas on a Saturday
    assert easter(2027) == dt.date(2027, 3, 28)
    assert not is_trading_day(dt.date(2027, 3, 26))  # Good Friday


def test_juneteenth_is_a_holiday_from_2022_only() -> None:
    assert not is_trading_day(dt.date(2022, 6, 20))  # observed on the Monday
    assert is_trading_day(dt.date(2021, 6, 18))


def test_early_closes() -> None:
    assert closing_time(dt.date(2026, 11, 27)) == dt.time(13, 0)  # after Thanksgiving
    assert closing_time(dt.date(2026, 12, 24)) == dt.time(13, 0)
    assert closing_time(dt.date(2026, 12, 23)) == dt.time(16, 0)
    assert closing_time(dt.date(2026, 11, 26)) is None


def test_on_an_nyse_holiday_the_edition_goes_without_stocks() -> None:
    nyse = Timetable(dt.time(7, 0), NEW_YORK, Cadence.WEEKDAYS, Calendar.NYSE)
    thanksgiving = dt.date(2026, 11, 26)
    assert next_send(utc(2026, 11, 25, 13, 0), nyse) == send_time(thanksgiving, nyse)
    assert sections_on(thanksgiving, nyse) == {Section.CRYPTO, Section.MARKETS}
    assert sections_on(dt.date(2026, 11, 27), nyse) == set(Section)
    assert sections_on(thanksgiving, SEVEN) == set(Section)  # no calendar: all sections


#: The half-days: the day after Thanksgiving, Christmas Eve, and the day before Independence
#: Day (2025; in 2026 July 4 is a Saturday, so July 3 is the holiday instead).
HALF_DAYS = [dt.date(2026, 11, 27), dt.date(2026, 12, 24), dt.date(2025, 7, 3)]


@pytest.mark.parametrize("day", HALF_DAYS, ids=str)
def test_a_half_day_edition_keeps_stocks_and_says_the_nyse_closes_early(day: dt.date) -> None:
    morning = Timetable(dt.time(7, 0), NEW_YORK, Cadence.WEEKDAYS, Calendar.NYSE)
    assert sections_on(day, morning) == set(Section)  # the morning session trades
    assert market_note(day, morning) == "NYSE closes early today, at 1:00 p.m. ET."
    # An edition that goes out at or after the early close tells it in the past tense.
    for send_at in (dt.time(13, 0), dt.time(17, 30)):
        evening = Timetable(send_at, NEW_YORK, Cadence.WEEKDAYS, Calendar.NYSE)
        assert market_note(day, evening) == "NYSE closed early today, at 1:00 p.m. ET."
    # The close is 1:00 p.m. in New York whatever the edition's time zone.
    london = ZoneInfo("Europe/London")
    before = Timetable(dt.time(17, 30), london, Cadence.WEEKDAYS, Calendar.NYSE)
    after = Timetable(dt.time(18, 30), london, Cadence.WEEKDAYS, Calendar.NYSE)
    assert market_note(day, before).startswith("NYSE closes early")
    assert market_note(day, after).startswith("NYSE closed early")
    assert market_note(day, SEVEN) == ""  # no calendar: no note


def test_the_market_note_of_full_days_and_holidays() -> None:
    nyse = Timetable(dt.time(7, 0), NEW_YORK, Cadence.DAILY, Calendar.NYSE)
    assert market_note(dt.date(2026, 11, 30), nyse) == ""  # a regular session
    assert market_note(dt.date(2026, 12, 23), nyse) == ""  # the day before Christmas Eve
    holiday = "NYSE closed today: no Stocks section."
    assert market_note(dt.date(2026, 11, 26), nyse) == holiday  # Thanksgiving
    assert market_note(dt.date(2026, 7, 3), nyse) == holiday  # July 4 observed
    assert market_note(dt.date(2026, 12, 25), nyse) == holiday
    assert market_note(dt.date(2026, 12, 5), nyse) == ""  # a Saturday needs no word


def test_a_weekend_edition_has_no_stocks_under_the_nyse_calendar() -> None:
    nyse = Timetable(dt.time(7, 0), NEW_YORK, Cadence.DAILY, Calendar.NYSE)
    assert Section.STOCKS not in sections_on(dt.date(2026, 12, 5), nyse)


def test_a_missed_send_inside_the_grace_period_is_caught_up() -> None:
    due = utc(2026, 12, 1, 12, 0)
    missed = missed_edition(due + dt.timedelta(hours=5, minutes=59), SEVEN, lambda date: False)
    assert missed is not None
    assert (missed.date, missed.due, missed.catch_up) == (dt.date(2026, 12, 1), due, True)


def test_a_missed_send_outside_the_grace_period_is_skipped() -> None:
    late = utc(2026, 12, 1, 18, 1)
    missed = missed_edition(late, SEVEN, lambda date: False)
    assert missed is not None and not missed.catch_up
    assert missed.late == dt.timedelta(hours=6, minutes=1)
    shorter = Timetable(dt.time(7, 0), NEW_YORK, catch_up=dt.timedelta(hours=1))
    missed = missed_edition(utc(2026, 12, 1, 13, 30), shorter, lambda date: False)
    assert missed is not None and not missed.catch_up


def test_a_send_the_ledger_has_done_is_never_caught_up_again() -> None:
    done = {dt.date(2026, 12, 1)}
    assert missed_edition(utc(2026, 12, 1, 13, 0), SEVEN, done.__contains__) is None


def test_before_send_time_the_missed_one_is_yesterdays() -> None:
    missed = missed_edition(utc(2026, 12, 1, 11, 0), SEVEN, lambda date: False)
    assert missed is not None
    assert missed.date == dt.date(2026, 11, 30) and not missed.catch_up


@pytest.mark.parametrize(
    ("every", "jitter"),
    [
        (dt.timedelta(minutes=30), dt.timedelta(minutes=3)),
        (dt.timedelta(hours=2), dt.timedelta(minutes=5)),
    ],
)
def test_fetch_jitter_is_a_tenth_of_the_interval_at_most_five_minutes(
    every: dt.timedelta, jitter: dt.timedelta
) -> None:
    assert fetch_jitter(every) == jitter
