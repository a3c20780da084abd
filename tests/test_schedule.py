"""The jobs of ``digest serve``, with the clock passed in: the lease, catching up, the send."""

from __future__ import annotations

import datetime as dt
import logging
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.config import Settings, load_settings
from digest.models import Subscriber
from digest.schedule import LEASE_TTL, SENDER_LEASE, SendTrigger, Service
from digest.store import Store

from .conftest import Inbox, write_config

FEED = {"name": "Wire", "url": "http://127.0.0.1:9/rss", "section": "stocks"}
NEW_YORK = ZoneInfo("America/New_York")


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=NEW_YORK).astimezone(dt.UTC)


def test_the_edition_trigger_fires_at_send_time_in_the_edition_time_zone(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, [FEED], send_at="06:30"), env={})
    trigger = SendTrigger(settings.edition.timetable)
    fire = trigger.get_next_fire_time(None, at(2026, 11, 24, 8, 0))
    assert fire == at(2026, 11, 25, 6, 30)
    assert trigger.get_next_fire_time(fire, fire) == at(2026, 11, 26, 6, 30)


def test_a_lease_is_held_until_its_holder_stops_renewing(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    start = at(2026, 12, 1, 6, 0)
    assert store.take_lease(SENDER_LEASE, "a", start, LEASE_TTL)
    assert not store.take_lease(SENDER_LEASE, "b", start + LEASE_TTL / 2, LEASE_TTL)
    assert store.take_lease(SENDER_LEASE, "a", start + LEASE_TTL / 2, LEASE_TTL)  # renewed
    later = start + LEASE_TTL * 1.4
    assert not store.take_lease(SENDER_LEASE, "b", later, LEASE_TTL)
    # a stops renewing: once its lease has run out, b takes over and a cannot come back.
    takeover = start + LEASE_TTL * 1.6
    assert store.take_lease(SENDER_LEASE, "b", takeover, LEASE_TTL)
    assert not store.take_lease(SENDER_LEASE, "a", takeover, LEASE_TTL)
    assert store.lease_holder(SENDER_LEASE, takeover) == ("b", takeover + LEASE_TTL)
    store.release_lease(SENDER_LEASE, "b")
    assert store.lease_holder(SENDER_LEASE, takeover) is None
    store.close()


RACER = """
import datetime as dt, sys, time
from digest.store import Store
store = Store(sys.argv[1])
start = float(sys.argv[3])
while time.time() < start:
    time.sleep(0.001)
now = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)
print(store.take_lease("sender", sys.argv[2], now, dt.timedelta(seconds=60)))
"""


def test_two_processes_racing_for_a_free_lease_cannot_both_win(tmp_path: Path) -> None:
    import os
    import time

    url = f"sqlite:///{tmp_path / 'digest.db'}"
    Store(url).close()  # migrated before the race
    for round_ in range(3):
        start = time.time() + 1.0
        racers = [
            subprocess.Popen(
                [sys.executable, "-c", RACER, url, f"p{round_}-{name}", str(start)],
                stdout=subprocess.PIPE,
                text=True,
                env=os.environ,
            )
            for name in "ab"
        ]
        answers = sorted(racer.communicate(timeout=60)[0].strip() for racer in racers)
        assert answers == ["False", "True"]
        store = Store(url)
        store.release_lease(SENDER_LEASE, f"p{round_}-a")
        store.release_lease(SENDER_LEASE, f"p{round_}-b")
        store.close()


def test_a_second_service_does_not_send_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(write_config(tmp_path, [FEED]), env={})
    first, second = Store(settings.db_url), Store(settings.db_url)
    now = at(2026, 12, 1, 6, 0)
    one = Service(settings, first, holder="one", clock=lambda: now)
    two = Service(settings, second, holder="two", clock=lambda: now)
    caplog.set_level(logging.INFO)
    one.renew_lease()
    two.renew_lease()
    assert one.sender and not two.sender
    assert "not sending: one holds the sender lease" in caplog.text
    assert two.send(dt.date(2026, 12, 1)) is None
    # The first stops renewing; once its lease runs out the second takes over.
    now = at(2026, 12, 1, 6, 0) + LEASE_TTL + dt.timedelta(seconds=1)
    two.clock = lambda: now
    two.renew_lease()
    assert two.sender
    assert "this process sends the editions (two)" in caplog.text
    first.close()
    second.close()


def test_a_missed_send_is_caught_up_within_catch_up_and_skipped_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from digest.models import Digest

    settings = load_settings(write_config(tmp_path, [FEED], catch_up="2h"), env={})
    store = Store(settings.db_url)
    caplog.set_level(logging.INFO)
    fresh = Service(settings, store, holder="a", clock=lambda: at(2026, 12, 1, 8, 59))
    fresh.start()  # a new database: no job stored, no edition, nothing was ever due
    assert fresh.sender and fresh.missed_run is None
    fresh.shutdown()
    assert "catching up" not in caplog.text and "skipped the edition" not in caplog.text
    # The service has run before: yesterday's edition is in the database.
    end = at(2026, 11, 30, 7, 0)
    yesterday = Digest(dt.date(2026, 11, 30), "Market Digest", "Daily", end, end, (), ())
    store.save_edition(yesterday, end)
    inside = Service(settings, store, holder="a", clock=lambda: at(2026, 12, 1, 8, 59))
    inside.start()
    inside.shutdown()
    assert "catching up the edition of 2026-12-01, due 1 h 59 min ago" in caplog.text

    outside = Service(settings, store, holder="b", clock=lambda: at(2026, 12, 1, 9, 1))
    outside.start()
    outside.shutdown()
    assert caplog.text.count("catching up") == 1
    assert (
        "skipped the edition of 2026-12-01: it was due 2 h 01 min ago, longer than catch_up "
        "(2 h 00 min)" in caplog.text
    )
    store.close()


def test_the_edition_sends_nothing_when_every_feed_is_down(
    tmp_path: Path, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(write_config(tmp_path, [FEED]), env={"DIGEST_SMTP_URL": inbox.url})
    store = Store(settings.db_url)
    store.add_subscriber(Subscriber("ann@example.com"), dt.datetime.now(dt.UTC))
    caplog.set_level(logging.INFO)
    service = Service(settings, store, holder="a")
    service.renew_lease()
    date = dt.datetime.now(settings.edition.timezone).date()
    assert service.send(date) is None
    (health,) = store.feed_states()
    assert health.consecutive_failures == 1 and health.last_error
    assert inbox.messages == []
    (error,) = [record for record in caplog.records if record.levelname == "ERROR"]
    assert "fewer than edition.min_stories (3)" in error.getMessage()
    assert "fetched 1 feeds" in caplog.text and "1 failed" in caplog.text
    assert not store.edition_is_sent(date)  # it is built again at the next run
    store.close()


def store_thanksgiving_news(tmp_path: Path, **env: str) -> tuple[Settings, Store]:
    """Stocks and crypto news for Thanksgiving 2026 and the half-day after it."""
    from dataclasses import replace

    from digest.health import decide
    from digest.models import FetchResult, Section

    from .factories import make_item

    feeds = [
        {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"},
        {"name": "Coins", "url": "https://coins.example.com/rss", "section": "crypto"},
    ]
    config = write_config(tmp_path, feeds, calendar="nyse", min_stories=1)
    settings = load_settings(config, env=env)
    store = Store(settings.db_url)
    store.sync_feeds(settings.feeds)
    for date in (THANKSGIVING, HALF_DAY):
        sent = at(date.year, date.month, date.day, 7, 0)
        stocks = [
            make_item(f"{word} shares rally on {date}", "Wire") for word in ("Nvidia", "Apple")
        ]
        crypto = [
            make_item(f"{word} climbs on {date}", "Coins", section=Section.CRYPTO)
            for word in ("Bitcoin", "Ether")
        ]
        for source, items in zip(settings.feeds, (stocks, crypto), strict=True):
            items = [replace(item, published=sent - dt.timedelta(hours=2)) for item in items]
            (feed,) = [state for state in store.feed_states() if state.url == source.url]
            result = FetchResult(source, 200, body=b"x")
            store.save_fetch(source.url, decide(result, len(items), feed, sent), items, sent)
    return settings, store


THANKSGIVING, HALF_DAY = dt.date(2026, 11, 26), dt.date(2026, 11, 27)


def test_on_an_nyse_holiday_the_edition_has_no_stocks_section_and_crypto_still_goes(
    tmp_path: Path,
) -> None:
    from digest.models import Section
    from digest.pipeline import build_edition

    settings, store = store_thanksgiving_news(tmp_path)

    def sections(date: dt.date) -> set[Section]:
        digest = build_edition(settings, store, date)
        stories = list(digest.top) + [story for _, part in digest.sections for story in part]
        return {story.section for story in stories}

    assert sections(THANKSGIVING) == {Section.CRYPTO}
    assert sections(HALF_DAY) == {Section.STOCKS, Section.CRYPTO}
    store.close()


def test_the_half_day_edition_tells_readers_the_nyse_closes_early(
    tmp_path: Path, inbox: Inbox
) -> None:
    from digest.pipeline import build_edition, send_edition

    settings, store = store_thanksgiving_news(tmp_path, DIGEST_SMTP_URL=inbox.url)
    store.add_subscriber(Subscriber("ann@example.com"), at(2026, 11, 1, 9, 0))
    notes = {
        THANKSGIVING: "NYSE closed today: no Stocks section.",
        HALF_DAY: "NYSE closes early today, at 1:00 p.m. ET.",
    }
    for date, note in notes.items():
        assert build_edition(settings, store, date).market_note == note
        send_edition(settings, store, date, at(date.year, date.month, date.day, 7, 0))
        message = inbox.parsed()["ann@example.com"]
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert note in text and note in html
        inbox.messages.clear()
    assert "[NVDA]" in text and "[AAPL]" in text  # the half-day has its Stocks news
    store.close()


def test_each_fetch_embeds_its_new_headlines_so_the_send_finds_them_cached(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from email.utils import format_datetime

    from digest.embedding import title_digest

    from .conftest import FeedServer, Route

    titles = ["Nvidia beats estimates as data-centre sales soar", "Bitcoin tops $100,000"]
    stamp = format_datetime(dt.datetime.now(dt.UTC))
    body = "".join(
        f"<item><title>{title}</title><link>https://a.example.com/{n}</link>"
        f"<pubDate>{stamp}</pubDate></item>"
        for n, title in enumerate(titles)
    )
    server = FeedServer()
    server.routes["/rss"] = Route(
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{body}'
        "</channel></rss>".encode()
    )
    feed = {"name": "Wire", "url": server.url("/rss"), "section": "stocks"}
    settings = load_settings(write_config(tmp_path, [feed]), env={})
    store = Store(settings.db_url)
    caplog.set_level(logging.INFO)
    try:
        service = Service(settings, store, holder="a")
        assert store.title_embeddings([title_digest(title) for title in titles]) == {}
        assert service.fetch() is not None
        cached = store.title_embeddings([title_digest(title) for title in titles])
        assert len(cached) == 2
        assert "embedded 2 new headlines" in caplog.text
        caplog.clear()
        assert service.fetch() is not None  # nothing new: nothing embedded again
        assert "embedded" not in caplog.text
    finally:
        store.close()
        server.close()
