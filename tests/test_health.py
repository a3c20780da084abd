"""Feed health across fetches: backoff, Retry-After, 410 Gone, permanent redirects."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.health import BACKOFF_CAP, backoff, is_stale, next_attempt
from digest.pipeline import fetch_feeds
from digest.store import Store

from .conftest import FeedServer, Route, write_config

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>A</title><link>https://a.example.com/1</link></item></channel></rss>"""
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def test_backoff_doubles_with_jitter_and_is_capped() -> None:
    waits = [backoff("https://f.example.com/rss", n) for n in range(1, 12)]
    assert dt.timedelta(minutes=11) <= waits[0] <= dt.timedelta(minutes=19)
    assert dt.timedelta(minutes=22) <= waits[1] <= dt.timedelta(minutes=38)
    assert all(wait <= BACKOFF_CAP * 1.25 for wait in waits)
    assert waits[-1] >= BACKOFF_CAP * 0.75
    assert backoff("https://a.example.com", 3) != backoff("https://b.example.com", 3)


def test_retry_after_wins_over_backoff_but_is_capped() -> None:
    assert next_attempt("u", 1, 120.0, NOW) == NOW + dt.timedelta(seconds=120)
    assert next_attempt("u", 1, 10**9, NOW) == NOW + dt.timedelta(hours=24)


def test_stale_after_two_days() -> None:
    assert is_stale(None, NOW)
    assert is_stale(NOW - dt.timedelta(days=3), NOW)
    assert not is_stale(NOW - dt.timedelta(hours=5), NOW)


@pytest.fixture
def one_feed(tmp_path: Path, feed_server: FeedServer):  # type: ignore[no-untyped-def]
    feed = {"name": "Wire", "url": feed_server.url("/feed"), "section": "stocks"}
    settings = load_settings(write_config(tmp_path, [feed]), env={})
    store = Store(settings.db_url)
    yield settings, store
    store.close()


def test_429_postpones_the_feed_until_retry_after(one_feed, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    settings, store = one_feed
    feed_server.routes["/feed"] = Route(b"", status=429, headers={"Retry-After": "3600"})
    (report,) = fetch_feeds(settings, store, NOW)
    assert report.status == 429
    (health,) = store.feed_states()
    assert health.next_attempt == NOW + dt.timedelta(hours=1)
    feed_server.routes["/feed"] = Route(RSS)
    requests = len(feed_server.requests)
    (report,) = fetch_feeds(settings, store, NOW + dt.timedelta(minutes=30))
    assert report.postponed_until == NOW + dt.timedelta(hours=1)
    assert len(feed_server.requests) == requests
    (report,) = fetch_feeds(settings, store, NOW + dt.timedelta(hours=2))
    assert report.error is None and report.items == 1


def test_failures_back_off_and_the_feed_keeps_being_retried(
    one_feed, feed_server: FeedServer
) -> None:  # type: ignore[no-untyped-def]
    settings, store = one_feed
    feed_server.routes["/feed"] = Route(b"down", status=500)
    moment = NOW
    for expected_failures in (1, 2, 3):
        (report,) = fetch_feeds(settings, store, moment)
        assert report.error == "HTTP 500 Internal Server Error"
        (health,) = store.feed_states()
        assert health.consecutive_failures == expected_failures
        assert health.next_attempt is not None and health.next_attempt > moment
        moment = health.next_attempt
    feed_server.routes["/feed"] = Route(RSS)
    (report,) = fetch_feeds(settings, store, moment)
    (health,) = store.feed_states()
    assert report.error is None and health.consecutive_failures == 0 and health.next_attempt is None


def test_410_gone_stops_fetching_and_says_so(one_feed, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    settings, store = one_feed
    feed_server.routes["/feed"] = Route(b"", status=410)
    fetch_feeds(settings, store, NOW)
    (health,) = store.feed_states()
    assert health.gone_at == NOW and "410 Gone" in (health.last_error or "")
    assert fetch_feeds(settings, store, NOW + dt.timedelta(days=1)) == []
    assert len(feed_server.requests) == 1


def test_permanent_redirect_moves_the_stored_url_once(one_feed, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    settings, store = one_feed
    feed_server.routes["/feed"] = Route(status=301, headers={"Location": "/moved"})
    feed_server.routes["/moved"] = Route(RSS)
    fetch_feeds(settings, store, NOW)
    fetch_feeds(settings, store, NOW + dt.timedelta(hours=1))
    (health,) = store.feed_states()
    assert health.url == feed_server.url("/moved")
    assert [path for path, _ in feed_server.requests] == ["/feed", "/moved", "/moved"]


def test_html_page_instead_of_a_feed_is_named(one_feed, feed_server: FeedServer) -> None:  # type: ignore[no-untyped-def]
    settings, store = one_feed
    feed_server.routes["/feed"] = Route(
        b"<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>",
        headers={"Content-Type": "text/html"},
    )
    (report,) = fetch_feeds(settings, store, NOW)
    assert report.error == "no entries found: not a feed, or an empty one"
    (health,) = store.feed_states()
    assert health.consecutive_failures == 1
