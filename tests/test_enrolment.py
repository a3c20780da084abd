"""What adding or importing may do to an address already there, decided without a database."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.enrolment import Enrolment, Outcome, SubscriberRecord, decide_enrolment
from digest.models import Subscriber

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
LEFT = dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC)
ANN = Subscriber("Ann@example.com", "Ann", True, ("NVDA",))
GONE = SubscriberRecord(Subscriber("Ann@example.com", "Ann", False, ("NVDA",)), LEFT)


def test_a_new_address_is_added_active() -> None:
    assert decide_enrolment(None, ANN, NOW, update=False) == Enrolment(
        "Ann@example.com", Outcome.ADDED, SubscriberRecord(ANN)
    )


def test_a_new_address_a_file_marks_unsubscribed_is_added_unsubscribed() -> None:
    left = Subscriber("bob@example.com", active=False)
    answer = decide_enrolment(None, left, NOW, update=False)
    assert answer.outcome is Outcome.ADDED_UNSUBSCRIBED
    assert answer.write == SubscriberRecord(left, unsubscribed_at=NOW)


@pytest.mark.parametrize("update", [False, True])
def test_an_unsubscribed_address_stays_unsubscribed(update: bool) -> None:
    again = Subscriber("ann@example.com", "Ann", True, ("NVDA",))
    answer = decide_enrolment(GONE, again, NOW, update=update)
    assert answer.outcome is Outcome.SKIPPED_UNSUBSCRIBED
    assert answer.write is None  # nothing differs but the status, which is not the file's to say
    assert answer.unsubscribed_at == LEFT
    assert answer.email == "Ann@example.com"


def test_an_update_of_an_unsubscribed_address_changes_its_details_and_not_its_status() -> None:
    answer = decide_enrolment(GONE, Subscriber("ann@example.com", "Annie"), NOW, update=True)
    assert answer.outcome is Outcome.SKIPPED_UNSUBSCRIBED
    assert answer.changed == ("name",)
    assert answer.write == SubscriberRecord(
        Subscriber("Ann@example.com", "Annie", False, ("NVDA",)), LEFT
    )


def test_an_address_already_there_changes_nothing_without_update() -> None:
    answer = decide_enrolment(
        SubscriberRecord(ANN),
        Subscriber("ann@example.com", "Annie", True, ("BTC",)),
        NOW,
        update=False,
    )
    assert answer.outcome is Outcome.UNCHANGED
    assert answer.write is None
    assert answer.ignored == ("name", "watchlist")


def test_an_update_replaces_name_and_watchlist_and_keeps_the_stored_letter_case() -> None:
    answer = decide_enrolment(
        SubscriberRecord(ANN),
        Subscriber("ANN@example.com", "Annie", True, ("BTC",)),
        NOW,
        update=True,
    )
    assert answer.outcome is Outcome.UPDATED
    assert answer.changed == ("name", "watchlist")
    assert answer.write == SubscriberRecord(Subscriber("Ann@example.com", "Annie", True, ("BTC",)))


def test_details_left_empty_keep_what_is_there() -> None:
    answer = decide_enrolment(
        SubscriberRecord(ANN), Subscriber("ann@example.com", "", True, ("BTC",)), NOW, update=True
    )
    assert answer.changed == ("watchlist",)
    assert answer.write is not None and answer.write.subscriber.name == "Ann"
    same = decide_enrolment(SubscriberRecord(ANN), Subscriber("ann@example.com"), NOW, update=True)
    assert (same.outcome, same.write, same.changed) == (Outcome.UNCHANGED, None, ())


def test_a_file_saying_unsubscribed_does_not_change_an_active_address() -> None:
    answer = decide_enrolment(
        SubscriberRecord(ANN), Subscriber("ann@example.com", active=False), NOW, update=True
    )
    assert (answer.outcome, answer.write) == (Outcome.UNCHANGED, None)
