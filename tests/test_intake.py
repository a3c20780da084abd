"""Fetch, parse and store at once: every feed stored, in batches, while others download."""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from digest.config import load_settings
from digest.fetch import FetchPolicy, fetch_each
from digest.intake import BATCH, fetch_feeds
from digest.models import FeedSource, Item, Section
from digest.store import Store

from .conftest import FeedServer, Route, write_config

NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def rss(n: int) -> bytes:
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Story {n}</title><link>https://a.example.com/{n}</link></item>
<item><title>Other {n}</title><link>https://a.example.com/o{n}</link></item>
</channel></rss>""".encode()


def test_more_feeds_than_a_batch_are_all_stored_and_reported_in_order(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    count = BATCH * 2 + 7
    feeds = []
    for n in range(count):
        feed_server.routes[f"/f/{n}"] = Route(rss(n), delay=0.01 * (n % 5))
        feeds.append(
            {"name": f"Feed {n:03}", "url": feed_server.url(f"/f/{n}"), "section": "stocks"}
        )
    feed_server.routes["/f/13"] = Route(b"<html>not a feed</html>")
    settings = load_settings(write_config(tmp_path, feeds), env={})
    store = Store(settings.db_url)
    try:
        policy = FetchPolicy(allow_private_hosts=True, per_host=16)
        reports = fetch_feeds(settings, store, NOW, policy)
        states = store.feed_states()
    finally:
        store.close()
    assert [report.name for report in reports] == [f"Feed {n:03}" for n in range(count)]
    assert [report.new_items for report in reports] == [0 if n == 13 else 2 for n in range(count)]
    assert [state.stored_items for state in states] == [0 if n == 13 else 2 for n in range(count)]
    (failed,) = [state for state in states if state.last_error is not None]
    assert failed.name == "Feed 013" and failed.consecutive_failures == 1


def test_each_result_comes_as_soon_as_it_is_complete(feed_server: FeedServer) -> None:
    feed_server.routes["/slow"] = Route(rss(1), delay=1.0)
    feed_server.routes["/fast"] = Route(rss(2))
    sources = [
        FeedSource("Slow", feed_server.url("/slow"), Section.STOCKS),
        FeedSource("Fast", feed_server.url("/fast"), Section.STOCKS),
    ]

    async def arrivals() -> list[str]:
        policy = FetchPolicy(allow_private_hosts=True)
        return [result.source.name async for result in fetch_each(sources, None, policy)]

    assert asyncio.run(arrivals()) == ["Fast", "Slow"]


def test_a_feed_that_cannot_be_stored_fails_alone_and_its_batch_is_written(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digest.parse as parsing

    parse = parsing.parse_feed

    def unstorable(body: bytes, source: FeedSource, *args: Any, **kwargs: Any) -> list[Item]:
        items = parse(body, source, *args, **kwargs)
        if source.name == "Feed 2":  # a lone surrogate: no database driver can encode it
            return [replace(item, title="Fed \ud800 cuts") for item in items]
        return items

    monkeypatch.setattr(parsing, "parse_feed", unstorable)
    feeds = []
    for n in range(5):
        feed_server.routes[f"/f/{n}"] = Route(rss(n))
        feeds.append({"name": f"Feed {n}", "url": feed_server.url(f"/f/{n}"), "section": "stocks"})
    settings = load_settings(write_config(tmp_path, feeds), env={})
    store = Store(settings.db_url)
    try:
        reports = fetch_feeds(settings, store, NOW, FetchPolicy(allow_private_hosts=True))
        states = store.feed_states()
    finally:
        store.close()
    assert [report.new_items for report in reports] == [2, 2, 0, 2, 2]
    assert "could not read or store it" in (reports[2].error or "")
    assert [state.stored_items for state in states] == [2, 2, 0, 2, 2]
    assert states[2].consecutive_failures == 1 and states[2].last_error == reports[2].error
