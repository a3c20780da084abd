"""`digest feeds` and `digest subscribers list`: a table on a terminal, every value in full
when piped, and json or csv on request.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.pipeline import fetch_feeds, open_store

from .conftest import FeedServer, Route, digest_command, digest_process, write_config

FEED_FIELDS = [
    "name",
    "url",
    "section",
    "status",
    "http_status",
    "failures",
    "items",
    "last_success",
    "next_attempt",
    "avg_ms",
    "error",
]
SUBSCRIBER_FIELDS = ["email", "name", "status", "watch"]
RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Nvidia beats estimates</title><link>https://w.example.com/1</link>
<pubDate>Tue, 24 Nov 2026 05:00:00 GMT</pubDate></item></channel></rss>"""
#: Longer than any column of an 80-column table.
LONG_PATH = "/feeds/" + "markets-" * 30 + "rss.xml"
LONG_NAME = "The Long Named Financial Wire\tof Everything"


@pytest.fixture
def fetched(tmp_path: Path, feed_server: FeedServer) -> tuple[Path, dict[str, str], FeedServer]:
    """Three feeds: one fetched fine (with a long URL), one failing with 500, one never fetched."""
    feed_server.routes[LONG_PATH] = Route(RSS)
    feed_server.routes["/down"] = Route(b"oops", status=500)
    config = write_config(
        tmp_path,
        [
            {"name": LONG_NAME, "url": feed_server.url(LONG_PATH), "section": "stocks"},
            {"name": "Down", "url": feed_server.url("/down"), "section": "crypto"},
        ],
    )
    env = {"DIGEST_DB": f"sqlite:///{tmp_path / 'digest.db'}"}
    settings = load_settings(config, env=env)
    store = open_store(settings)
    try:
        fetch_feeds(settings, store, dt.datetime.now(dt.UTC))
    finally:
        store.close()
    # Added, so checked once, but never fetched into the store.
    feed_server.routes["/later"] = Route(RSS)
    added = digest_command(
        "feeds",
        "add",
        feed_server.url("/later"),
        "--section",
        "markets",
        config=config,
        env=env,
    )
    assert added.returncode == 0, added.stderr
    return config, env, feed_server


def test_piped_feeds_are_tab_separated_lines_with_nothing_cut(
    fetched: tuple[Path, dict[str, str], FeedServer],
) -> None:
    config, env, server = fetched
    result = digest_command("feeds", config=config, env=env)
    assert result.returncode == 0, result.stderr
    assert "│" not in result.stdout and "…" not in result.stdout
    rows = [line.split("\t") for line in result.stdout.splitlines()]
    assert all(len(row) == len(FEED_FIELDS) for row in rows)
    down, later, wire = (dict(zip(FEED_FIELDS, row, strict=True)) for row in rows)
    # Failing first, then never fetched, then fine: the order of the table.
    assert (down["name"], down["status"], down["http_status"]) == ("Down", "failing", "500")
    assert down["error"] == "HTTP 500 Internal Server Error" and down["failures"] == "1"
    assert (later["url"], later["status"], later["section"]) == (
        server.url("/later"),
        "never fetched",
        "markets",
    )
    assert later["last_success"] == later["error"] == ""
    # A tab inside a value becomes a space, so each feed stays one line of eleven fields.
    assert wire["name"] == LONG_NAME.replace("\t", " ")
    assert wire["url"] == server.url(LONG_PATH)
    assert (wire["status"], wire["http_status"], wire["items"]) == ("ok", "200", "1")
    assert dt.datetime.fromisoformat(wire["last_success"]).tzinfo is not None


def test_feeds_as_json(fetched: tuple[Path, dict[str, str], FeedServer]) -> None:
    config, env, server = fetched
    result = digest_command("feeds", "--format", "json", config=config, env=env)
    assert result.returncode == 0, result.stderr
    feeds = json.loads(result.stdout)
    assert [list(feed) for feed in feeds] == [FEED_FIELDS] * 3
    down, later, wire = feeds
    assert down["http_status"] == 500 and down["failures"] == 1 and down["items"] == 0
    assert down["error"] == "HTTP 500 Internal Server Error"
    assert later["status"] == "never fetched" and later["http_status"] is None
    assert later["last_success"] is None and later["avg_ms"] is None
    assert wire["name"] == LONG_NAME and wire["url"] == server.url(LONG_PATH)
    assert wire["status"] == "ok" and wire["error"] is None and isinstance(wire["avg_ms"], int)
    assert dt.datetime.fromisoformat(wire["last_success"]).tzinfo is not None


def test_feeds_as_csv_match_the_json(fetched: tuple[Path, dict[str, str], FeedServer]) -> None:
    config, env, _ = fetched
    as_csv = digest_command("feeds", "--format", "csv", config=config, env=env)
    as_json = digest_command("feeds", "--format", "json", config=config, env=env)
    assert as_csv.returncode == 0, as_csv.stderr
    reader = csv.DictReader(io.StringIO(as_csv.stdout))
    assert reader.fieldnames == FEED_FIELDS
    expected = [
        {key: "" if value is None else str(value) for key, value in feed.items()}
        for feed in json.loads(as_json.stdout)
    ]
    assert list(reader) == expected


def test_feeds_table_wraps_long_values_instead_of_cutting_them(
    fetched: tuple[Path, dict[str, str], FeedServer],
) -> None:
    config, env, _ = fetched
    result = digest_command(
        "feeds", "--format", "table", config=config, env=env | {"COLUMNS": "80"}
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("┏") and all(len(line) <= 80 for line in lines)
    assert "…" not in result.stdout
    # The long name folds over several lines of its column; every letter is still there.
    names = "".join(line.split("│")[1].strip() for line in lines if line.startswith("│"))
    assert LONG_NAME.replace("\t", " ").replace(" ", "") in names.replace(" ", "")


def test_format_belongs_to_the_list_not_to_the_subcommands(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, [{"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}]
    )
    result = digest_command("feeds", "--format", "json", "export", config=config)
    assert result.returncode == 2
    assert "--format is for the list" in result.stderr


@pytest.fixture
def people(tmp_path: Path) -> Path:
    config = write_config(
        tmp_path, [{"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}]
    )
    for args in (
        ("ann@example.com", "--name", "Ann Lee", "--watch", "NVDA,BTC"),
        ("bob@example.org", "--name", "z" * 150),
    ):
        result = digest_command("subscribers", "add", "--confirmed", *args, config=config)
        assert result.returncode == 0, result.stderr
    return config


def test_piped_subscribers_are_tab_separated_lines_and_the_count_goes_to_stderr(
    people: Path,
) -> None:
    result = digest_command("subscribers", "list", config=people)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "ann@example.com\tAnn Lee\tactive\tNVDA BTC",
        f"bob@example.org\t{'z' * 150}\tactive\t",
    ]
    assert result.stderr == "2 subscribers.\n"


def test_subscribers_as_json(people: Path) -> None:
    result = digest_command("subscribers", "list", "--format", "json", config=people)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [
        {
            "email": "ann@example.com",
            "name": "Ann Lee",
            "status": "active",
            "watch": ["NVDA", "BTC"],
        },
        {"email": "bob@example.org", "name": "z" * 150, "status": "active", "watch": []},
    ]


def test_subscribers_as_csv_are_what_export_writes(people: Path) -> None:
    listed = digest_command("subscribers", "list", "--all", "--format", "csv", config=people)
    exported = digest_command("subscribers", "export", config=people)
    assert listed.returncode == 0, listed.stderr
    rows = list(csv.DictReader(io.StringIO(listed.stdout)))
    assert [row["watch"] for row in rows] == ["NVDA,BTC", ""]
    assert list(rows[0]) == SUBSCRIBER_FIELDS
    assert listed.stdout == exported.stdout


def test_subscribers_table_wraps_a_long_name_instead_of_cutting_it(people: Path) -> None:
    result = digest_command(
        "subscribers", "list", "--format", "table", config=people, env={"COLUMNS": "80"}
    )
    assert result.returncode == 0, result.stderr
    assert all(len(line) <= 80 for line in result.stdout.splitlines())
    assert "…" not in result.stdout
    assert result.stdout.count("z") == 150
    assert result.stdout.endswith("2 subscribers.\n")


def _on_a_terminal(*args: str, config: Path) -> str:
    """Run ``digest ARGS`` in a child process whose stdout is a pseudo-terminal."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("DIGEST_")}
    controller, terminal = pty.openpty()
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "digest", "--config", str(config), *args],
            stdin=subprocess.DEVNULL,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env={**clean, "TERM": "xterm", "COLUMNS": "120", "NO_COLOR": "1"},
        )
    finally:
        os.close(terminal)
    chunks = []
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # Linux: the terminal's other end is closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(controller)
    assert process.wait(timeout=60) == 0, process.stderr.read() if process.stderr else ""
    if process.stderr:
        process.stderr.close()
    text = b"".join(chunks).decode().replace("\r\n", "\n")
    return re.sub(r"\x1b\[[0-9;]*m", "", text)  # the header's bold


def test_the_default_is_a_table_on_a_terminal_and_plain_lines_in_a_pipe(people: Path) -> None:
    on_terminal = _on_a_terminal("subscribers", "list", config=people)
    assert "┃ Email" in on_terminal and "│ ann@example.com" in on_terminal
    piped = digest_process("subscribers", "list", config=people)
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.splitlines()[0] == "ann@example.com\tAnn Lee\tactive\tNVDA BTC"
