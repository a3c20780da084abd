"""When to try a feed again: backoff after failures, Retry-After, and what counts as stale.

Pure: the time comes in as ``now``.
"""

from __future__ import annotations

import datetime as dt
import hashlib

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
