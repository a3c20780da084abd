"""What adding or importing may do to a new address and to one already there, decided without
a database."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.enrolment import Entry, Outcome, SubscriberRecord, decide_enrolment
from digest.lifecycle import Mail, State
from digest.models import Subscriber

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
LEFT = dt.datetime(2026, 10, 1, 8, 30, tzinfo=dt.UTC)
ANN = Subscriber("Ann@example.com", "Ann", True, ("NVDA",))
GONE = SubscriberRecord(
    Subscriber("Ann@example.com", "Ann", False, ("NVDA",)), State.UNSUBSCRIBED, LEFT
)


def test_a_new_address_vouched_for_is_added_active() -> None:
    answer = decide_enrolment(None, Entry(ANN), NOW, update=False, confirmed=True)
    assert (answer.email, answer.outcome, answer.subscriber) == (
        "Ann@example.com",
        Outcome.ADDED,
        ANN,
    )
    assert (answer.state, answer.notice) == (State.ACTIVE, None)


def test_a_new_address_not_vouched_for_is_pending_and_gets_a_confirmation() -> None:
    answer = decide_enrolment(None, Entry(ANN), NOW, update=False, confirmed=False)
    assert answer.outcome is Outcome.ADDED_PENDING
    assert answer.state is State.PENDING and answer.subscriber.active is False
    assert answer.notice is not None and answer.notice.mail is Mail.CONFIRMATION


@pytest.mark.parametrize("state", [State.UNSUBSCRIBED, State.BOUNCED, State.COMPLAINED])
@pytest.mark.parametrize("confirmed", [False, True])
def test_a_new_address_a_file_lists_suppressed_is_added_so(state: State, confirmed: bool) -> None:
    left = Subscriber("bob@example.com", active=False)
    answer = decide_enrolment(None, Entry(left, state), NOW, update=False, confirmed=confirmed)
    assert answer.outcome is Outcome.ADDED_SUPPRESSED
    assert (answer.state, answer.since, answer.notice) == (state, NOW, None)


def test_a_file_listing_pending_is_pending_even_when_vouched_for() -> None:
    answer = decide_enrolment(None, Entry(ANN, State.PENDING), NOW, update=False, confirmed=True)
    assert answer.outcome is Outcome.ADDED_PENDING


@pytest.mark.parametrize("state", [State.UNSUBSCRIBED, State.BOUNCED, State.COMPLAINED])
@pytest.mark.parametrize("update", [False, True])
@pytest.mark.parametrize("confirmed", [False, True])
def test_a_suppressed_address_stays_suppressed(state: State, update: bool, confirmed: bool) -> None:
    existing = SubscriberRecord(GONE.subscriber, state, LEFT)
    again = Entry(Subscriber("ann@example.com", "Ann", True, ("NVDA",)), State.ACTIVE)
    answer = decide_enrolment(existing, again, NOW, update=update, confirmed=confirmed)
    assert answer.outcome is Outcome.SKIPPED_SUPPRESSED
    assert answer.transition.why is None and answer.notice is None
    assert (answer.state, answer.since) == (state, LEFT)
    assert answer.email == "Ann@example.com"
    assert answer.changed == ()  # nothing differs but the status, which is not the file's to say


def test_an_update_of_an_unsubscribed_address_changes_its_details_and_not_its_state() -> None:
    answer = decide_enrolment(
        GONE, Entry(Subscriber("ann@example.com", "Annie")), NOW, update=True, confirmed=True
    )
    assert answer.outcome is Outcome.SKIPPED_SUPPRESSED
    assert answer.changed == ("name",)
    assert answer.subscriber == Subscriber("Ann@example.com", "Annie", False, ("NVDA",))
    assert answer.state is State.UNSUBSCRIBED


def test_a_pending_address_vouched_for_becomes_active() -> None:
    pending = SubscriberRecord(ANN, State.PENDING, LEFT)
    answer = decide_enrolment(pending, Entry(ANN), NOW, update=False, confirmed=True)
    assert answer.outcome is Outcome.CONFIRMED
    assert (answer.state, answer.since, answer.notice) == (State.ACTIVE, NOW, None)


def test_a_pending_address_added_again_gets_its_confirmation_again() -> None:
    pending = SubscriberRecord(ANN, State.PENDING, LEFT)
    answer = decide_enrolment(pending, Entry(ANN), NOW, update=False, confirmed=False)
    assert answer.outcome is Outcome.STILL_PENDING
    assert (answer.state, answer.since) == (State.PENDING, LEFT)
    assert answer.notice is not None and answer.notice.mail is Mail.CONFIRMATION


def test_an_address_already_there_changes_nothing_without_update() -> None:
    answer = decide_enrolment(
        SubscriberRecord(ANN),
        Entry(Subscriber("ann@example.com", "Annie", True, ("BTC",))),
        NOW,
        update=False,
        confirmed=False,
    )
    assert answer.outcome is Outcome.UNCHANGED
    assert answer.changed == () and answer.subscriber == ANN and answer.notice is None
    assert answer.ignored == ("name", "watchlist")


def test_an_update_replaces_name_and_watchlist_and_keeps_the_stored_letter_case() -> None:
    answer = decide_enrolment(
        SubscriberRecord(ANN),
        Entry(Subscriber("ANN@example.com", "Annie", True, ("BTC",))),
        NOW,
        update=True,
        confirmed=False,
    )
    assert answer.outcome is Outcome.UPDATED
    assert answer.changed == ("name", "watchlist")
    assert answer.subscriber == Subscriber("Ann@example.com", "Annie", True, ("BTC",))


def test_details_left_empty_keep_what_is_there() -> None:
    answer = decide_enrolment(
        SubscriberRecord(ANN),
        Entry(Subscriber("ann@example.com", "", True, ("BTC",))),
        NOW,
        update=True,
        confirmed=True,
    )
    assert answer.changed == ("watchlist",)
    assert answer.subscriber.name == "Ann"
    same = decide_enrolment(
        SubscriberRecord(ANN),
        Entry(Subscriber("ann@example.com")),
        NOW,
        update=True,
        confirmed=True,
    )
    assert (same.outcome, same.changed) == (Outcome.UNCHANGED, ())


@pytest.mark.parametrize("state", [State.UNSUBSCRIBED, State.BOUNCED, State.COMPLAINED])
def test_a_file_listing_a_suppressed_state_does_not_change_an_address_already_there(
    state: State,
) -> None:
    for existing in (SubscriberRecord(ANN), SubscriberRecord(ANN, State.PENDING, LEFT)):
        answer = decide_enrolment(
            existing, Entry(Subscriber("ann@example.com"), state), NOW, update=True, confirmed=True
        )
        assert answer.transition.why is None and answer.notice is None
        assert answer.state is existing.state
