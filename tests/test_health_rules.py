"""The feed-health rules on their own: fetch result + feed state + now → update. No database."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from digest.health import (
    EMPTY_ERROR,
    GONE_ERROR,
    Condition,
    backoff,
    classify,
    decide,
    is_due,
)
from digest.models import FeedSource, FeedState, FetchResult, Section, Validators

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
SOURCE = FeedSource("Wire", "https://wire.example.com/rss", Section.STOCKS)
FRESH = FeedState(SOURCE, validators=Validators('"old"', "Mon, 23 Nov 2026 10:00:00 GMT"))


def fetched(status: int = 200, **fields: object) -> FetchResult:
    return FetchResult(SOURCE, status, body=b"<rss/>", **fields)  # type: ignore[arg-type]


def test_success_resets_failures_and_keeps_the_new_validators() -> None:
    failing = replace(FRESH, consecutive_failures=3, next_attempt=NOW + dt.timedelta(hours=1))
    update = decide(fetched(validators=Validators('"new"', None), elapsed=0.2), 7, failing, NOW)
    assert update.ok and update.last_error is None
    assert update.consecutive_failures == 0 and update.next_attempt is None
    assert update.last_success == NOW and update.last_attempt == NOW
    assert update.last_item_count == 7
    assert update.validators == Validators('"new"', None)
    assert update.mean_response_ms == pytest.approx(200.0)


def test_not_modified_keeps_the_old_validators_and_counts_as_success() -> None:
    update = decide(FetchResult(SOURCE, 304, validators=Validators()), 0, FRESH, NOW)
    assert update.ok and update.validators == FRESH.validators


def test_a_response_with_no_items_is_a_failure_that_backs_off() -> None:
    update = decide(fetched(validators=Validators('"new"', None)), 0, FRESH, NOW)
    assert update.last_error == EMPTY_ERROR and not update.ok
    assert update.consecutive_failures == 1
    assert update.next_attempt == NOW + backoff(SOURCE.url, 1)
    assert update.validators == FRESH.validators  # an empty answer is not remembered


def test_failures_back_off_longer_each_time() -> None:
    state = FRESH
    waits = []
    for _ in range(4):
        update = decide(FetchResult(SOURCE, 500, error="HTTP 500"), 0, state, NOW)
        assert update.next_attempt is not None
        waits.append(update.next_attempt - NOW)
        state = replace(state, consecutive_failures=update.consecutive_failures)
    assert waits == sorted(waits) and waits[0] < waits[-1]
    assert state.consecutive_failures == 4


def test_retry_after_sets_the_next_attempt() -> None:
    result = FetchResult(SOURCE, 429, error="HTTP 429", retry_after=600.0)
    assert decide(result, 0, FRESH, NOW).next_attempt == NOW + dt.timedelta(minutes=10)


def test_410_marks_the_feed_gone_and_it_is_no_longer_due() -> None:
    update = decide(FetchResult(SOURCE, 410, error="HTTP 410 Gone"), 0, FRESH, NOW)
    assert update.gone_at == NOW and update.last_error == GONE_ERROR
    gone = replace(FRESH, gone_at=update.gone_at)
    assert not is_due(gone, NOW + dt.timedelta(days=30))
    assert classify(gone, NOW) is Condition.GONE


def test_a_permanent_redirect_is_an_intent_to_move() -> None:
    moved = "https://wire.example.com/feed.xml"
    assert decide(fetched(moved_to=moved), 3, FRESH, NOW).moved_to == moved
    assert decide(fetched(moved_to=SOURCE.url), 3, FRESH, NOW).moved_to is None


def test_mean_response_time_is_a_running_mean() -> None:
    state = replace(FRESH, fetch_count=3, mean_response_ms=100.0)
    update = decide(fetched(elapsed=0.5), 1, state, NOW)
    assert update.mean_response_ms == pytest.approx(200.0)
    assert update.fetch_count == 4


def test_due_unless_inactive_gone_or_waiting() -> None:
    assert is_due(FRESH, NOW)
    assert not is_due(replace(FRESH, active=False), NOW)
    waiting = replace(FRESH, next_attempt=NOW + dt.timedelta(minutes=5))
    assert not is_due(waiting, NOW)
    assert is_due(waiting, NOW + dt.timedelta(minutes=5))


def test_conditions_order_the_most_urgent_first() -> None:
    ok = replace(FRESH, last_attempt=NOW, last_success=NOW, last_status=200)
    feeds = {
        Condition.OK: ok,
        Condition.STALE: replace(ok, last_success=NOW - dt.timedelta(days=3)),
        Condition.FAILING: replace(ok, consecutive_failures=2),
        Condition.GONE: replace(ok, gone_at=NOW),
        Condition.NEVER_FETCHED: FRESH,
        Condition.INACTIVE: replace(ok, active=False, consecutive_failures=2),
    }
    assert {condition: classify(feed, NOW) for condition, feed in feeds.items()} == {
        condition: condition for condition in feeds
    }
    assert sorted(feeds) == [
        Condition.FAILING,
        Condition.GONE,
        Condition.NEVER_FETCHED,
        Condition.STALE,
        Condition.OK,
        Condition.INACTIVE,
    ]
