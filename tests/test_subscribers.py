"""Subscriber lists in and out: CSV files, addresses and watchlists, without a database."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from digest.enrolment import Entry
from digest.errors import AddressError, ConfigError
from digest.lifecycle import State, SubscriberRecord
from digest.models import Subscriber
from digest.subscribers import parse_watchlist, read_subscribers, write_subscribers


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "people.csv"
    path.write_text(text, encoding=encoding)
    return path


def test_rows_become_subscribers_with_addresses_normalised(tmp_path: Path) -> None:
    path = write(
        tmp_path, 'Email,Name,watch\n  Ann@EXAMPLE.com ,Ann ,"nvda, BTC"\nbob@example.com,,\n'
    )
    assert read_subscribers(path) == [
        Entry(Subscriber("Ann@example.com", "Ann", True, ("NVDA", "BTC"))),
        Entry(Subscriber("bob@example.com", "", True, ())),
    ]


def test_a_byte_order_mark_is_not_part_of_the_header(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nann@example.com\n", encoding="utf-8-sig")
    assert [entry.subscriber.email for entry in read_subscribers(path)] == ["ann@example.com"]


def test_a_bad_address_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email\nann@example.com\nnot-an-address\n")
    with pytest.raises(AddressError, match=r"people\.csv:3: 'not-an-address'"):
        read_subscribers(path)


def test_an_unknown_symbol_names_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "email,watch\nann@example.com,NOPEX\n")
    with pytest.raises(ConfigError, match=r"people\.csv:2: .*'NOPEX'"):
        read_subscribers(path)


def test_a_file_without_an_email_column_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="line 1: expected a header with an 'email' column"):
        read_subscribers(write(tmp_path, "address\nann@example.com\n"))


def test_watchlists_are_upper_case_and_without_repeats() -> None:
    assert parse_watchlist(" nvda,BTC , nvda,, ") == ("NVDA", "BTC")
    assert parse_watchlist("") == ()


def test_an_export_reads_back_as_the_same_people_in_the_same_states(tmp_path: Path) -> None:
    records = [
        SubscriberRecord(Subscriber("ann@example.com", "Ann, of Example", True, ("NVDA", "BTC"))),
        *(
            SubscriberRecord(Subscriber(f"{state}@example.com", "", False, ()), state)
            for state in State
            if state is not State.ACTIVE
        ),
    ]
    out = io.StringIO()
    write_subscribers(records, out)
    assert out.getvalue().splitlines()[0] == "email,name,status,watch"
    assert "unsubscribed@example.com,,unsubscribed," in out.getvalue()
    back = read_subscribers(write(tmp_path, out.getvalue()))
    assert [(e.subscriber.email, e.subscriber.name, e.subscriber.watchlist) for e in back] == [
        (r.subscriber.email, r.subscriber.name, r.subscriber.watchlist) for r in records
    ]
    assert [entry.listed for entry in back] == [record.state for record in records]


def test_a_status_is_a_state_in_any_letter_case_or_none(tmp_path: Path) -> None:
    path = write(tmp_path, "email,status\na@example.com,\nb@example.com,Bounced\n")
    assert [entry.listed for entry in read_subscribers(path)] == [None, State.BOUNCED]
