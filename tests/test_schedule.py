from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from digest.config import load_settings
from digest.models import Subscriber
from digest.schedule import FETCH_EVERY, edition_job, make_scheduler
from digest.store import Store

from .conftest import Inbox, write_config

FEED = {"name": "Wire", "url": "http://127.0.0.1:9/rss", "section": "stocks"}


def test_edition_job_fires_at_send_time_in_the_edition_time_zone(tmp_path: Path) -> None:
    settings = load_settings(write_config(tmp_path, [FEED], send_at="06:30"), env={})
    store = Store(settings.db_url)
    scheduler = make_scheduler(settings, store)
    new_york = ZoneInfo("America/New_York")
    after = dt.datetime(2026, 11, 24, 8, 0, tzinfo=new_york)
    edition = scheduler.get_job("edition")
    fire = edition.trigger.get_next_fire_time(None, after)
    assert fire == dt.datetime(2026, 11, 25, 6, 30, tzinfo=new_york)
    fetch = scheduler.get_job("fetch")
    assert fetch.trigger.interval == FETCH_EVERY
    store.close()


def test_edition_job_sends_even_when_every_feed_is_down(tmp_path: Path, inbox: Inbox) -> None:
    settings = load_settings(write_config(tmp_path, [FEED]), env={"DIGEST_SMTP_URL": inbox.url})
    store = Store(settings.db_url)
    store.add_subscriber(Subscriber("ann@example.com"), dt.datetime.now(dt.UTC))
    edition_job(settings, store)
    (health,) = store.feed_states()
    assert health.consecutive_failures == 1 and health.last_error
    assert [rcpt for _, rcpts, _ in inbox.messages for rcpt in rcpts] == ["ann@example.com"]
    store.close()
