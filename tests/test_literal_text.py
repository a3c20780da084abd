"""Text from feeds and people is printed as it is, never read as Rich markup or emoji codes.

A server's reason phrase, a feed's name or title and a subscriber's name reach the terminal
through ``digest feeds``, ``digest feeds check`` and ``digest subscribers list``; brackets in
them once made those commands crash ("closing tag '[/oops]' ... has nothing to close").
"""

from __future__ import annotations

import datetime as dt
import json
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.pipeline import fetch_feeds, open_store

from .conftest import FeedServer, Inbox, Route, digest_command, write_config

NAME = "[bold]Wire[/bold] :rocket:"
TITLE = "Nvidia [/b] beats [red]estimates[/red] :rocket:"
RSS = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>{TITLE}</title><link>https://w.example.com/1</link>
<pubDate>Tue, 24 Nov 2026 05:00:00 GMT</pubDate></item></channel></rss>""".encode()
#: Wide enough that Rich lays each table row out on one line.
WIDE = {"COLUMNS": "250"}


@pytest.fixture
def failing_feed(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, str]]:
    """A feed whose server answered "503 [/oops]", fetched once for real: the error is stored."""
    monkeypatch.setitem(BaseHTTPRequestHandler.responses, 503, ("[/oops]", "a reason with a tag"))
    feed_server.routes["/feed"] = Route(b"down", status=503)
    config = write_config(
        tmp_path, [{"name": NAME, "url": feed_server.url("/feed"), "section": "stocks"}]
    )
    env = {"DIGEST_DB": f"sqlite:///{tmp_path / 'digest.db'}"}
    settings = load_settings(config, env=env)
    store = open_store(settings)
    try:
        (report,) = fetch_feeds(settings, store, dt.datetime.now(dt.UTC))
    finally:
        store.close()
    assert report.error == "HTTP 503 [/oops]"  # what the server said, as the store keeps it
    return config, env


def test_feeds_shows_a_stored_error_with_brackets_literally(
    failing_feed: tuple[Path, dict[str, str]],
) -> None:
    config, env = failing_feed
    result = digest_command("feeds", config=config, env=env)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert line.startswith(f"{NAME}\t")
    assert line.endswith("\tHTTP 503 [/oops]")


def test_feeds_table_shows_a_stored_error_with_brackets_literally(
    failing_feed: tuple[Path, dict[str, str]],
) -> None:
    config, env = failing_feed
    result = digest_command("feeds", "--format", "table", config=config, env=env | WIDE)
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "│" in line]
    assert NAME in row and "HTTP 503 [/oops]" in row and "failing (503)" in row


def test_feeds_json_keeps_the_stored_error_as_it_is(
    failing_feed: tuple[Path, dict[str, str]],
) -> None:
    config, env = failing_feed
    result = digest_command("feeds", "--format", "json", config=config, env=env)
    assert result.returncode == 0, result.stderr
    (feed,) = json.loads(result.stdout)
    assert (feed["name"], feed["status"], feed["error"]) == (NAME, "failing", "HTTP 503 [/oops]")


def test_check_shows_titles_with_brackets_and_emoji_codes_literally(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    content_type = "application/rss+xml; profile=[/i]"
    feed_server.routes["/feed"] = Route(RSS, headers={"Content-Type": content_type})
    config = write_config(
        tmp_path, [{"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}]
    )
    result = digest_command("feeds", "check", feed_server.url("/feed"), config=config)
    assert result.returncode == 0, result.stderr
    assert f"  - {TITLE}\n" in result.stdout
    assert content_type in result.stdout


@pytest.mark.parametrize("output_format", ["table", "plain"])
def test_subscribers_list_shows_names_with_brackets_literally(
    tmp_path: Path, output_format: str
) -> None:
    config = write_config(
        tmp_path, [{"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}]
    )
    name = "[/b] Ann [bold]:smile:"
    added = digest_command(
        "subscribers", "add", "--confirmed", "ann@example.com", "--name", name, config=config
    )
    assert added.returncode == 0, added.stderr
    result = digest_command(
        "subscribers", "list", "--format", output_format, config=config, env=WIDE
    )
    assert result.returncode == 0, result.stderr
    (row,) = [line for line in result.stdout.splitlines() if "ann@example.com" in line]
    assert name in row


def test_run_reports_a_bracketed_error_and_title_literally_and_goes_on(
    tmp_path: Path, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch, inbox: Inbox
) -> None:
    # "[/oops]" once stopped `digest run` right after fetching: no build, no send.
    monkeypatch.setitem(BaseHTTPRequestHandler.responses, 503, ("[/oops]", "a reason with a tag"))
    feed_server.routes["/down"] = Route(b"down", status=503)
    feed_server.routes["/feed"] = Route(RSS)
    config = write_config(
        tmp_path,
        [
            {"name": NAME, "url": feed_server.url("/down"), "section": "stocks"},
            {"name": "Wire", "url": feed_server.url("/feed"), "section": "stocks"},
        ],
        min_stories=1,
    )
    env = {"DIGEST_DB": f"sqlite:///{tmp_path / 'digest.db'}", "DIGEST_SMTP_URL": inbox.url}
    assert (
        digest_command(
            "subscribers", "add", "--confirmed", "ann@example.com", config=config
        ).returncode
        == 0
    )
    result = digest_command("run", "--date", "2026-11-24", config=config, env={**env, **WIDE})
    assert result.returncode == 3, result.stderr  # partial: one feed failed, the edition went out
    assert f"failed {NAME} ({feed_server.url('/down')}): HTTP 503 [/oops]" in result.stdout
    assert "Sent the edition of 2026-11-24 to 1 subscribers" in result.stdout
    assert len(inbox.messages) == 1
