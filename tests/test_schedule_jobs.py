"""The jobs of ``digest serve`` in the database, on SQLite and PostgreSQL, with the clock passed
in: restarts keep the edition's run time, a missed send is caught up once or skipped, and of
several services on one database only the lease holder runs the jobs."""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from digest.config import Settings, load_settings
from digest.ledger import Status
from digest.models import Subscriber
from digest.schedule import EDITION_JOB, LEASE_TTL, Service
from digest.store import Store

from .conftest import FeedServer, Inbox, Route, write_config

FEED = {"name": "Wire", "url": "http://127.0.0.1:9/rss", "section": "stocks"}
NEW_YORK = ZoneInfo("America/New_York")


def at(*parts: int) -> dt.datetime:
    return dt.datetime(*parts, tzinfo=NEW_YORK).astimezone(dt.UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def make_settings(tmp_path: Path, db_url: str, feed: str = FEED["url"], **env: str) -> Settings:
    wire = {**FEED, "url": feed}
    config = write_config(tmp_path, [wire], catch_up="2h", min_stories=1)
    return load_settings(config, env={"DIGEST_DB": db_url, **env})


def serve_news(server: FeedServer, published: dt.datetime) -> str:
    """A feed of three stories published at ``published``; returns its URL."""
    items = "".join(
        f"<item><title>{name} shares rally after earnings</title>"
        f"<link>https://news.example.com/{name}</link><guid>https://news.example.com/{name}</guid>"
        f"<pubDate>{format_datetime(published)}</pubDate></item>"
        for name in ("Nvidia", "Apple", "Oracle")
    )
    body = (
        "<?xml version='1.0'?><rss version='2.0'><channel><title>Wire</title>"
        f"<link>https://news.example.com/</link>{items}</channel></rss>"
    )
    server.routes["/wire.xml"] = Route(
        body.encode(), headers={"Content-Type": "application/rss+xml"}
    )
    return server.url("/wire.xml")


def run(service: Service, until: Callable[[], bool] = lambda: True) -> None:
    """Start ``service``, wait for ``until`` (what its jobs do at once), stop it."""
    service.start()
    try:
        deadline = time.monotonic() + 60
        while not until():
            assert time.monotonic() < deadline, "still waiting for the service's jobs"
            time.sleep(0.05)
    finally:
        service.shutdown()


def test_the_jobs_are_rows_in_the_database_and_a_restart_keeps_the_edition_time(
    db_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path, db_url)
    store = Store(db_url)
    first = Service(settings, store, holder="first", clock=Clock(at(2026, 12, 1, 6, 0)))
    first.start()
    assert first.scheduler is not None
    edition = first.scheduler.get_job("edition")
    assert edition.func_ref == EDITION_JOB and edition.args == ("first",)
    first.shutdown()
    # The rows outlive the process that wrote them.
    runs = store.scheduled_runs()
    assert set(runs) == {"edition", "fetch", "retry"}
    assert runs["edition"] == at(2026, 12, 1, 7, 0)

    again = Service(settings, store, holder="again", clock=Clock(at(2026, 12, 1, 6, 30)))
    again.start()
    assert again.scheduler is not None
    edition = again.scheduler.get_job("edition")
    assert edition.args == ("again",) and edition.next_run_time == at(2026, 12, 1, 7, 0)
    assert edition.coalesce and edition.misfire_grace_time == 2 * 3600
    again.shutdown()
    assert store.scheduled_runs()["edition"] == at(2026, 12, 1, 7, 0)
    store.close()


def down_before_seven(
    db_url: str, tmp_path: Path, inbox: Inbox, feed_server: FeedServer
) -> tuple[Settings, Store]:
    """A service that was up at 06:00 on 2026-12-01 and down before its 07:00 edition: no
    edition was ever sent from this database, but the stored edition job says one was due."""
    feed = serve_news(feed_server, at(2026, 12, 1, 5, 0))
    settings = make_settings(tmp_path, db_url, feed, DIGEST_SMTP_URL=inbox.url)
    store = Store(db_url)
    store.add_subscriber(Subscriber("ann@example.com"), at(2026, 11, 20, 9, 0))
    run(Service(settings, store, holder="a", clock=Clock(at(2026, 12, 1, 6, 0))))
    assert store.edition_dates() == []
    return settings, store


def test_a_restart_inside_catch_up_sends_the_missed_edition_once(
    db_url: str,
    tmp_path: Path,
    inbox: Inbox,
    feed_server: FeedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings, store = down_before_seven(db_url, tmp_path, inbox, feed_server)

    back = Service(settings, store, holder="b", clock=Clock(at(2026, 12, 1, 8, 30)))
    run(back, until=lambda: "sent before) to" in caplog.text)
    assert back.missed_run == at(2026, 12, 1, 7, 0)
    assert "catching up the edition of 2026-12-01, due 1 h 30 min ago" in caplog.text
    assert [recipients for _, recipients, _ in inbox.messages] == [["ann@example.com"]]
    assert store.scheduled_runs()["edition"] == at(2026, 12, 2, 7, 0)

    # Another restart within catch_up: the ledger says the edition went out.
    run(Service(settings, store, holder="c", clock=Clock(at(2026, 12, 1, 8, 45))))
    assert caplog.text.count("catching up") == 1
    assert len(inbox.messages) == 1
    assert store.delivery_counts(dt.date(2026, 12, 1)) == {Status.SENT: 1}
    store.close()


def test_a_restart_after_catch_up_skips_the_missed_edition_with_a_log_line(
    db_url: str,
    tmp_path: Path,
    inbox: Inbox,
    feed_server: FeedServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    settings, store = down_before_seven(db_url, tmp_path, inbox, feed_server)
    late = Service(settings, store, holder="b", clock=Clock(at(2026, 12, 1, 9, 31)))
    run(late)
    assert late.missed_run == at(2026, 12, 1, 7, 0)
    assert (
        "skipped the edition of 2026-12-01: it was due 2 h 31 min ago, longer than catch_up "
        "(2 h 00 min)" in caplog.text
    )
    assert "catching up" not in caplog.text
    assert inbox.messages == [] and store.edition_dates() == []
    # The edition job goes on with the next edition.
    assert store.scheduled_runs()["edition"] == at(2026, 12, 2, 7, 0)
    store.close()


def test_of_two_services_on_one_database_only_the_lease_holder_runs_the_jobs(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(tmp_path, db_url)
    first, second = Store(db_url), Store(db_url)
    one_clock, two_clock = Clock(at(2026, 12, 1, 6, 0)), Clock(at(2026, 12, 1, 6, 0))
    one = Service(settings, first, holder="one", clock=one_clock)
    two = Service(settings, second, holder="two", clock=two_clock)
    caplog.set_level(logging.INFO)
    one.start()
    two.start()
    try:
        assert one.sender and one.scheduler is not None and one.scheduler.running
        assert not two.sender and two.scheduler is None
        assert one.running and two.running  # the standby is up: it polls the lease
        assert "not sending: one holds the sender lease" in caplog.text
        assert one.scheduler.get_job("edition").args == ("one",)

        # One stops renewing (a hung host); once its lease has run out, two takes over the
        # jobs, and the edition keeps its run time.
        two_clock.now = at(2026, 12, 1, 6, 0) + LEASE_TTL + dt.timedelta(seconds=1)
        two.renew_lease()
        assert two.sender and two.scheduler is not None and two.scheduler.running
        edition = two.scheduler.get_job("edition")
        assert edition.args == ("two",) and edition.next_run_time == at(2026, 12, 1, 7, 0)
        assert "this process sends the editions (two)" in caplog.text

        # One comes back: its next renewal finds the lease taken, and it stops its jobs.
        one_clock.now = two_clock.now
        one.renew_lease()
        assert not one.sender and one.scheduler is None
        assert "lost the sender lease: this process no longer sends" in caplog.text
        assert one.send(dt.date(2026, 12, 1)) is None
    finally:
        one.shutdown()
        two.shutdown()
    first.close()
    second.close()


def test_a_stored_job_that_cannot_be_read_back_is_added_again(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from digest.store import schema

    settings = make_settings(tmp_path, db_url)
    store = Store(db_url)
    with store.begin() as connection:  # as if an older market-digest had written it
        connection.execute(
            schema.scheduler_jobs.insert().values(
                id="edition", next_run_time=0.0, job_state=b"not a pickled job"
            )
        )
    service = Service(settings, store, holder="a", clock=Clock(at(2026, 12, 1, 6, 0)))
    service.start()
    service.shutdown()
    assert "the stored edition job cannot be read" in caplog.text
    assert store.scheduled_runs()["edition"] == at(2026, 12, 1, 7, 0)
    assert service.missed_run is None
    store.close()
