from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

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


def test_edition_job_sends_nothing_when_every_feed_is_down(
    tmp_path: Path, inbox: Inbox, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(write_config(tmp_path, [FEED]), env={"DIGEST_SMTP_URL": inbox.url})
    store = Store(settings.db_url)
    store.add_subscriber(Subscriber("ann@example.com"), dt.datetime.now(dt.UTC))
    edition_job(settings, store)
    (health,) = store.feed_states()
    assert health.consecutive_failures == 1 and health.last_error
    assert inbox.messages == []
    (error,) = [record for record in caplog.records if record.levelname == "ERROR"]
    assert "fewer than edition.min_stories (3)" in error.getMessage()
    date = dt.datetime.now(settings.edition.timezone).date()
    assert not store.edition_is_sent(date)  # it is built again at the next run
    store.close()
