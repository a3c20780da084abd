"""A subscriber's states and what moves them, decided without a database."""

from __future__ import annotations

import datetime as dt

import pytest

from digest.lifecycle import (
    REFUSED,
    Mail,
    State,
    Transition,
    confirm,
    enrol,
    leave,
    sign_up,
)

NOW = dt.datetime(2026, 11, 24, 12, 0, 30, 500_000, tzinfo=dt.UTC)
SUPPRESSED = [State.UNSUBSCRIBED, State.BOUNCED, State.COMPLAINED]


def test_only_active_gets_mail_and_three_states_are_suppressed() -> None:
    assert [state for state in State if state.gets_mail] == [State.ACTIVE]
    assert [state for state in State if state.suppressed] == SUPPRESSED


# -- signing up on the site -------------------------------------------------------------------


def test_a_new_address_signing_up_is_pending_with_a_confirmation() -> None:
    assert sign_up(None) == Transition(
        State.PENDING, "signed up on the web site", Mail.CONFIRMATION
    )


def test_a_pending_address_signing_up_again_gets_the_link_again() -> None:
    assert sign_up(State.PENDING) == Transition(State.PENDING, None, Mail.CONFIRMATION)


def test_an_active_address_signing_up_is_sent_nothing() -> None:
    assert sign_up(State.ACTIVE) == Transition(State.ACTIVE)


@pytest.mark.parametrize("state", SUPPRESSED)
def test_a_suppressed_address_signing_up_stays_so_and_gets_a_confirmation(state: State) -> None:
    assert sign_up(state) == Transition(state, None, Mail.CONFIRMATION)


# -- following a confirm link -----------------------------------------------------------------


def test_confirming_a_pending_address_makes_it_active_with_a_welcome() -> None:
    assert confirm(State.PENDING, NOW, NOW) == Transition(
        State.ACTIVE, "confirmed with their own link", Mail.WELCOME
    )


@pytest.mark.parametrize("state", SUPPRESSED)
def test_their_own_newer_confirmation_brings_a_suppressed_address_back(state: State) -> None:
    issued = NOW + dt.timedelta(days=1)
    assert confirm(state, NOW, issued) == Transition(
        State.ACTIVE,
        f"subscribed again with their own confirm link (was {state})",
        Mail.WELCOME,
    )


@pytest.mark.parametrize("state", [State.PENDING, *SUPPRESSED])
def test_a_confirm_link_older_than_the_last_change_is_refused(state: State) -> None:
    assert confirm(state, NOW, NOW - dt.timedelta(seconds=1)) is REFUSED


def test_a_link_issued_in_the_second_of_the_change_is_not_older() -> None:
    # Tokens carry whole seconds; the change was at 12:00:30.5.
    assert not confirm(State.UNSUBSCRIBED, NOW, NOW.replace(microsecond=0)).refused


def test_confirming_an_active_address_changes_and_sends_nothing() -> None:
    assert confirm(State.ACTIVE, NOW, NOW - dt.timedelta(days=3)) == Transition(State.ACTIVE)


def test_confirming_an_unknown_address_is_refused() -> None:
    assert confirm(None, None, NOW).refused


# -- leaving ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("current", "to", "after"),
    [
        (State.ACTIVE, State.UNSUBSCRIBED, State.UNSUBSCRIBED),
        (State.PENDING, State.UNSUBSCRIBED, State.UNSUBSCRIBED),
        (State.ACTIVE, State.BOUNCED, State.BOUNCED),
        (State.UNSUBSCRIBED, State.BOUNCED, State.BOUNCED),
        (State.ACTIVE, State.COMPLAINED, State.COMPLAINED),
        (State.UNSUBSCRIBED, State.COMPLAINED, State.COMPLAINED),
        (State.BOUNCED, State.COMPLAINED, State.COMPLAINED),
    ],
)
def test_leaving_moves_to_a_stronger_suppression(current: State, to: State, after: State) -> None:
    assert leave(current, to, "why") == Transition(after, "why")


@pytest.mark.parametrize(
    ("current", "to"),
    [
        (State.UNSUBSCRIBED, State.UNSUBSCRIBED),
        (State.BOUNCED, State.UNSUBSCRIBED),
        (State.COMPLAINED, State.UNSUBSCRIBED),
        (State.BOUNCED, State.BOUNCED),
        (State.COMPLAINED, State.BOUNCED),
        (State.COMPLAINED, State.COMPLAINED),
    ],
)
def test_leaving_never_weakens_a_suppression(current: State, to: State) -> None:
    assert leave(current, to, "why") == Transition(current)


def test_leaving_is_only_to_a_suppressed_state_and_only_for_a_known_address() -> None:
    assert leave(None, State.UNSUBSCRIBED, "why").refused
    for state in (State.ACTIVE, State.PENDING):
        with pytest.raises(ValueError):
            leave(State.ACTIVE, state, "why")


# -- adding and importing ---------------------------------------------------------------------


@pytest.mark.parametrize("listed", [None, State.ACTIVE])
def test_a_new_address_vouched_for_is_active_otherwise_pending(listed: State | None) -> None:
    assert enrol(None, listed, confirmed=True) == Transition(
        State.ACTIVE, "added by the operator, who vouched for consent"
    )
    assert enrol(None, listed, confirmed=False) == Transition(
        State.PENDING, "added by the operator; waiting for their confirmation", Mail.CONFIRMATION
    )


@pytest.mark.parametrize("confirmed", [False, True])
def test_a_new_address_listed_pending_is_pending(confirmed: bool) -> None:
    assert enrol(None, State.PENDING, confirmed=confirmed).state is State.PENDING


@pytest.mark.parametrize("listed", SUPPRESSED)
@pytest.mark.parametrize("confirmed", [False, True])
def test_a_new_address_listed_suppressed_is_added_so(listed: State, confirmed: bool) -> None:
    assert enrol(None, listed, confirmed=confirmed) == Transition(listed, f"imported as {listed}")


@pytest.mark.parametrize("current", SUPPRESSED)
@pytest.mark.parametrize("listed", [None, *State])
@pytest.mark.parametrize("confirmed", [False, True])
def test_adding_never_changes_a_suppressed_address(
    current: State, listed: State | None, confirmed: bool
) -> None:
    assert enrol(current, listed, confirmed=confirmed) == Transition(current)


@pytest.mark.parametrize("listed", [None, *State])
@pytest.mark.parametrize("confirmed", [False, True])
def test_adding_never_changes_an_active_address(listed: State | None, confirmed: bool) -> None:
    assert enrol(State.ACTIVE, listed, confirmed=confirmed) == Transition(State.ACTIVE)


def test_a_pending_address_added_again_is_confirmed_when_vouched_for_or_reminded() -> None:
    assert enrol(State.PENDING, None, confirmed=True) == Transition(
        State.ACTIVE, "confirmed by the operator, who vouched for consent"
    )
    assert enrol(State.PENDING, None, confirmed=False) == Transition(
        State.PENDING, None, Mail.CONFIRMATION
    )
    assert enrol(State.PENDING, State.PENDING, confirmed=True) == Transition(
        State.PENDING, None, Mail.CONFIRMATION
    )
    assert enrol(State.PENDING, State.UNSUBSCRIBED, confirmed=True) == Transition(State.PENDING)


def test_no_event_but_their_own_confirmation_makes_a_suppressed_address_active() -> None:
    events = [
        *(sign_up(state) for state in SUPPRESSED),
        *(leave(state, to, "why") for state in SUPPRESSED for to in SUPPRESSED),
        *(
            enrol(state, listed, confirmed=confirmed)
            for state in SUPPRESSED
            for listed in (None, *State)
            for confirmed in (False, True)
        ),
    ]
    assert all(event.state is not State.ACTIVE for event in events)
