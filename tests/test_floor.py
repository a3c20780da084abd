"""A floor under the edition: no almost empty edition, and none built while the feeds are
down, reaches anyone; the day's edition is built again once they are back."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.floor import why_not_send
from digest.models import FeedSource, FeedState, Section, Subscriber
from digest.store import Store

from .conftest import SAMPLE_DATE, FeedServer, Inbox, Route, digest_command

DATE = SAMPLE_DATE.isoformat()
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)


def feed(failures: int = 0, active: bool = True, gone: bool = False) -> FeedState:
    source = FeedSource("Wire", f"https://wire.example.com/{failures}", Section.STOCKS)
    return FeedState(
        source, active=active, consecutive_failures=failures, gone_at=NOW if gone else None
    )


def test_too_few_stories_hold_the_edition_back() -> None:
    assert why_not_send(2, [feed()], 3) == "it has 2 stories, fewer than edition.min_stories (3)"
    assert why_not_send(1, [feed()], 3) == "it has 1 story, fewer than edition.min_stories (3)"
    assert why_not_send(3, [feed()], 3) is None
    assert why_not_send(0, [feed()], 0) is None


def test_most_feeds_failing_hold_the_edition_back() -> None:
    feeds = [feed(1), feed(2), feed(0)]
    assert why_not_send(30, feeds, 3) == "2 of 3 feeds are failing"
    # Half is a bad morning, not an outage; gone and inactive feeds do not count.
    assert why_not_send(30, [feed(1), feed(0)], 3) is None
    assert why_not_send(30, [feed(0), feed(4, gone=True), feed(4, active=False)], 3) is None


@pytest.fixture
def people(serve_samples, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    config: Path = serve_samples()
    added = digest_command("subscribers", "add", "--confirmed", "ann@example.com", config=config)
    assert added.returncode == 0, added.stderr
    return config


def test_feeds_down_send_nothing_and_the_edition_is_built_again_when_they_are_back(
    people: Path, inbox: Inbox, feed_server: FeedServer
) -> None:
    env = {"DIGEST_SMTP_URL": inbox.url}
    working = dict(feed_server.routes)
    for path in working:
        feed_server.routes[path] = Route(b"down", status=503)
    down = digest_command("run", "--date", DATE, config=people, env=env)
    assert down.returncode == 1
    assert "Fetched 0/9 feeds" in down.stdout
    assert down.stderr == (
        f"Error: the edition of {DATE} was not sent: it has 0 stories, fewer than "
        "edition.min_stories (3); fix the feeds and run again, or send it anyway with --force\n"
    )
    assert inbox.messages == []

    feed_server.routes.update(working)
    back = digest_command("run", "--date", DATE, "--force", config=people, env=env)
    assert back.returncode == 0, back.stderr
    assert "Fetched 9/9 feeds" in back.stdout and "Built the edition of" in back.stdout
    ((_, recipients, body),) = inbox.messages
    assert recipients == ["ann@example.com"] and b"No stories in this edition" not in body


def test_after_a_failed_fetch_the_feeds_back_off_and_force_fetches_them(
    people: Path, feed_server: FeedServer
) -> None:
    working = dict(feed_server.routes)
    for path in working:
        feed_server.routes[path] = Route(b"down", status=503)
    failed = digest_command("fetch", config=people)
    assert (
        failed.returncode == 1 and failed.stderr == "Error: no feed could be fetched (9 failures)\n"
    )
    feed_server.routes.update(working)
    waiting = digest_command("fetch", config=people)
    assert waiting.returncode == 0 and "Fetched 0/0 feeds" in waiting.stdout
    assert waiting.stdout.count("postponed") == 9 and "--force fetches it now" in waiting.stdout
    forced = digest_command("fetch", "--force", config=people)
    assert forced.returncode == 0, forced.stderr
    assert "Fetched 9/9 feeds" in forced.stdout


def test_fetch_urls_fetches_only_those(people: Path, feed_server: FeedServer) -> None:
    settings = load_settings(people, env={})
    first, second = settings.feeds[0].url, settings.feeds[1].url
    result = digest_command("fetch", first, second, config=people)
    assert result.returncode == 0, result.stderr
    assert "Fetched 2/2 feeds" in result.stdout
    assert {path for path, _ in feed_server.requests} == {
        "/" + first.rsplit("/", 1)[1],
        "/" + second.rsplit("/", 1)[1],
    }
    unknown = digest_command("fetch", "https://nobody.example.com/rss", config=people)
    assert unknown.returncode == 1
    assert "https://nobody.example.com/rss: not an active feed" in unknown.stderr


def test_an_edition_for_a_day_without_news_is_not_sent(people: Path, inbox: Inbox) -> None:
    env = {"DIGEST_SMTP_URL": inbox.url}
    assert digest_command("fetch", config=people).returncode == 0
    built = digest_command("build", "--date", "2001-01-01", config=people)
    assert built.returncode == 0 and "0 stories" in built.stdout
    sent = digest_command("send", "--date", "2001-01-01", config=people, env=env)
    assert sent.returncode == 1 and "fewer than edition.min_stories (3)" in sent.stderr
    assert inbox.messages == []
    settings = load_settings(people, env={})
    store = Store(settings.db_url)
    try:
        assert store.delivery_counts(dt.date(2001, 1, 1)) == {}  # nothing planned either
    finally:
        store.close()


def test_min_stories_is_configurable(serve_samples, inbox: Inbox) -> None:  # type: ignore[no-untyped-def]
    config: Path = serve_samples(min_stories=200, max_stories=200)
    assert (
        digest_command(
            "subscribers", "add", "--confirmed", "ann@example.com", config=config
        ).returncode
        == 0
    )
    result = digest_command(
        "run", "--date", DATE, config=config, env={"DIGEST_SMTP_URL": inbox.url}
    )
    assert result.returncode == 1
    assert re.search(r"it has \d+ stories, fewer than edition.min_stories \(200\)", result.stderr)
    assert inbox.messages == []


def test_a_feed_that_breaks_the_parser_is_recorded_and_the_rest_go_on(
    people: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    import digest.parse as parsing

    parse = parsing.parse_feed

    def fragile(body: bytes, source: FeedSource, *args: object, **kwargs: object) -> object:
        if source.name == "Market Wire":
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return parse(body, source, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(parsing, "parse_feed", fragile)
    env = {"DIGEST_SMTP_URL": inbox.url}
    result = digest_command("run", "--date", DATE, config=people, env=env)
    assert result.returncode == 3, result.stderr  # partial: sent, one feed failed
    assert "Fetched 8/9 feeds" in result.stdout
    assert "could not read or store it: UnicodeEncodeError" in result.stdout
    assert len(inbox.messages) == 1
    settings = load_settings(people, env={})
    store = Store(settings.db_url)
    try:
        (wire,) = [feed for feed in store.feed_states() if feed.name == "Market Wire"]
        assert wire.consecutive_failures == 1 and wire.next_attempt is not None
        assert "UnicodeEncodeError" in (wire.last_error or "")
    finally:
        store.close()


def test_a_message_that_cannot_be_made_is_recorded_and_the_rest_are_sent(
    people: Path, inbox: Inbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.wire import EditionMessages

    assert digest_command("subscribers", "add", "bob@example.com", config=people).returncode == 0
    make = EditionMessages.bytes_for

    assert (
        digest_command(
            "subscribers", "add", "--confirmed", "bob@example.com", config=people
        ).returncode
        == 0
    )
    make = EditionMessages.bytes_for

    def fragile(self: EditionMessages, subscriber: Subscriber, message_id: str) -> bytes:
        if subscriber.email == "ann@example.com":
            raise ValueError("Header values may not contain linefeed or carriage return")
        return make(self, subscriber, message_id)

    monkeypatch.setattr(EditionMessages, "bytes_for", fragile)
    env = {"DIGEST_SMTP_URL": inbox.url}
    result = digest_command("run", "--date", DATE, config=people, env=env)
    assert result.returncode == 3
    assert "ann@example.com: failed: the message could not be made: ValueError" in result.stdout
    assert [rcpt for _, rcpts, _ in inbox.messages for rcpt in rcpts] == ["bob@example.com"]
    ledger = digest_command("sends", DATE, config=people)
    assert "1 sent, 0 deferred, 1 failed" in ledger.stdout
    assert "failed ann@example.com: the message could not be made: ValueError" in ledger.stdout
