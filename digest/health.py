"""A feed's health: what one fetch changes, when to try again, and how a feed is doing.

Every rule about a feed's health lives here and is pure (the time comes in as ``now``):
``decide`` turns a fetch result and the feed's state into the update the store writes;
``is_due`` says whether a feed is fetched this time; ``classify`` is what the CLI and the
web show.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib

from .models import FeedState, FeedUpdate, FetchResult

#: First wait after a failure; doubled for each further failure in a row, up to the cap, so
#: a feed that is down for a day costs a publisher a handful of requests, not forty-eight.
BACKOFF_BASE = dt.timedelta(minutes=15)
BACKOFF_CAP = dt.timedelta(hours=6)
#: A Retry-After longer than this is not honoured in full: the feed is never dropped.
RETRY_AFTER_CAP = dt.timedelta(hours=24)
#: Spread of the jitter around each wait (±25%), so feeds that failed together don't return
#: together.
JITTER = 0.25
#: A feed with no successful fetch for this long is listed as stale.
STALE_AFTER = dt.timedelta(days=2)

GONE_ERROR = "HTTP 410 Gone: the publisher removed this feed; no longer fetched"
EMPTY_ERROR = "no entries found: not a feed, or an empty one"


def backoff(url: str, failures: int) -> dt.timedelta:
    """The wait after ``failures`` failures in a row, with a jitter fixed per feed and count."""
    steps = max(0, failures - 1)
    wait = min(BACKOFF_CAP, BACKOFF_BASE * (2 ** min(steps, 16)))
    digest = hashlib.sha256(f"{url}\0{failures}".encode()).digest()
    fraction = int.from_bytes(digest[:4], "big") / 0xFFFFFFFF
    jittered: dt.timedelta = wait * (1 - JITTER + 2 * JITTER * fraction)
    return jittered


def next_attempt(
    url: str, failures: int, retry_after: float | None, now: dt.datetime
) -> dt.datetime:
    """When a feed that just failed for the ``failures``-th time in a row is due again."""
    if retry_after is not None:
        return now + min(RETRY_AFTER_CAP, dt.timedelta(seconds=retry_after))
    return now + backoff(url, failures)


def is_stale(last_success: dt.datetime | None, now: dt.datetime) -> bool:
    return last_success is None or now - last_success > STALE_AFTER


def is_due(feed: FeedState, now: dt.datetime) -> bool:
    """Whether ``feed`` is fetched at ``now``: active, not gone, not waiting."""
    if not feed.active or feed.gone_at is not None:
        return False
    return feed.next_attempt is None or feed.next_attempt <= now


def decide(result: FetchResult, items: int, feed: FeedState, now: dt.datetime) -> FeedUpdate:
    """The feed's state after ``result``, which parsed into ``items`` items.

    A response that parses into nothing counts as a failure (a page instead of a feed, or an
    emptied one); 410 Gone stops fetching; any other failure backs off, or waits as long as
    Retry-After asked. A permanent redirect moves the feed's URL.
    """
    count = feed.fetch_count
    milliseconds = result.elapsed * 1000
    mean = (
        milliseconds
        if not count or feed.mean_response_ms is None
        else (feed.mean_response_ms * count + milliseconds) / (count + 1)
    )
    error = result.error
    if error is None and not result.not_modified and items == 0:
        error = EMPTY_ERROR
    moved_to = result.moved_to if result.moved_to != feed.url else None
    if error is None:
        return FeedUpdate(
            last_attempt=now,
            last_status=result.status,
            last_error=None,
            consecutive_failures=0,
            fetch_count=count + 1,
            mean_response_ms=mean,
            last_success=now,
            last_item_count=items,
            next_attempt=None,
            gone_at=feed.gone_at,
            validators=feed.validators if result.not_modified else result.validators,
            moved_to=moved_to,
        )
    failures = feed.consecutive_failures + 1
    gone = result.status == 410
    return FeedUpdate(
        last_attempt=now,
        last_status=result.status,
        last_error=GONE_ERROR if gone else error,
        consecutive_failures=failures,
        fetch_count=count + 1,
        mean_response_ms=mean,
        last_success=feed.last_success,
        last_item_count=feed.last_item_count,
        next_attempt=(
            feed.next_attempt if gone else next_attempt(feed.url, failures, result.retry_after, now)
        ),
        gone_at=now if gone else feed.gone_at,
        validators=feed.validators,
        moved_to=moved_to,
    )


class Condition(enum.IntEnum):
    """How a feed is doing, most urgent first: the order ``digest feeds`` lists them in."""

    FAILING = 0
    GONE = 1
    NEVER_FETCHED = 2
    STALE = 3
    OK = 4
    INACTIVE = 5


def classify(feed: FeedState, now: dt.datetime) -> Condition:
    if not feed.active:
        return Condition.INACTIVE
    if feed.gone_at is not None:
        return Condition.GONE
    if feed.consecutive_failures:
        return Condition.FAILING
    if feed.last_attempt is None:
        return Condition.NEVER_FETCHED
    if is_stale(feed.last_success, now):
        return Condition.STALE
    return Condition.OK
