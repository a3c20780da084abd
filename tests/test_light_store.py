"""``digest fetch``'s own SQLite connection (store/light.py) beside the full store.

Both run the statements of store/feed_rows.py; these tests hold that the light one writes
exactly what the full one writes, that SQLAlchemy reads its rows back as written, and that
it steps aside for any database it should not open itself.
"""

from __future__ import annotations

import datetime as dt
import os
import resource
import sqlite3
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.health import decide
from digest.models import FeedSource, FetchOutcome, FetchResult, Item, Section
from digest.store import Store, schema
from digest.store.feed_rows import FeedRecords
from digest.store.light import SCHEMA_VERSION, LightFeedStore

from .conftest import FeedServer, Route, write_config
from .factories import BASE, make_item

SNAPSHOT = Path(__file__).parent.parent / "digest" / "data" / "sqlite-schema.sql"

SOURCES = [
    FeedSource(f"Feed {n}", f"https://f{n}.example.com/rss", Section.STOCKS, 1.0 + n / 4)
    for n in range(4)
]


def test_the_light_store_knows_the_latest_schema() -> None:
    assert len(schema.MIGRATIONS) == SCHEMA_VERSION


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _migrated(path: Path) -> str:
    Store(_url(path)).close()
    return _url(path)


def _light(url: str) -> LightFeedStore:
    light = LightFeedStore.open(url)
    assert light is not None
    return light


def test_only_a_plain_sqlite_file_at_this_schema_is_opened(tmp_path: Path) -> None:
    current = _migrated(tmp_path / "current.db")
    _light(current).close()
    older = tmp_path / "older.db"
    _migrated(older)
    with sqlite3.connect(older) as connection:
        connection.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    not_a_database = tmp_path / "notes.db"
    not_a_database.write_text("not a database\n" * 100)
    for url in (
        _url(tmp_path / "no-such-folder" / "digest.db"),  # the full store says so
        _url(older),  # to be migrated first
        _url(not_a_database),
        "sqlite://",
        "sqlite:///:memory:",
        current + "?timeout=5",
        "postgresql://digest@127.0.0.1/digest",
    ):
        assert LightFeedStore.open(url) is None, url


def _dump(path: Path) -> list[str]:
    """The file's schema and rows as SQL, in no particular order (an index made earlier or
    later is the same index)."""
    with sqlite3.connect(path) as connection:
        return sorted(connection.iterdump())


def test_a_new_file_gets_the_schema_the_migrations_make(tmp_path: Path) -> None:
    migrated, made = tmp_path / "migrated.db", tmp_path / "made.db"
    _migrated(migrated)
    if os.environ.get("DIGEST_WRITE_SQLITE_SCHEMA") == "1":
        statements = [
            line for line in _dump(migrated) if line not in ("BEGIN TRANSACTION;", "COMMIT;")
        ]
        SNAPSHOT.write_text("".join(f"{line}\n" for line in statements), encoding="utf-8")
    _light(_url(made)).close()
    assert _dump(made) == _dump(migrated), (
        "digest/data/sqlite-schema.sql is not the schema the migrations make: "
        "DIGEST_WRITE_SQLITE_SCHEMA=1 pytest tests/test_light_store.py writes it anew"
    )
    store = Store(_url(made))  # opens it as its own: nothing left to migrate
    try:
        with store.begin() as c:
            assert schema.schema_version(c) == SCHEMA_VERSION
    finally:
        store.close()


def test_a_new_file_another_process_is_creating_is_opened_once_created(tmp_path: Path) -> None:
    # Another process has begun making the tables and not yet committed: this one finds
    # the file empty, waits for the write lock, fails to make tables that are there by
    # then, and opens the file the other made.
    path = tmp_path / "digest.db"
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("PRAGMA journal_mode=WAL")
    other.execute("BEGIN IMMEDIATE")
    for statement in SNAPSHOT.read_text(encoding="utf-8").split(";\n"):
        if statement.strip():
            other.execute(statement)
    feeds: list[int] = []

    def fetch_into_it() -> None:
        light = _light(_url(path))
        light.sync_feeds(SOURCES)
        feeds.append(len(light.feed_states()))
        light.close()

    opening = threading.Thread(target=fetch_into_it)
    opening.start()
    opening.join(0.5)
    assert opening.is_alive()  # waiting for the other's write lock
    other.execute("COMMIT")
    other.close()
    opening.join()
    assert feeds == [len(SOURCES)]


def _outcomes(
    records: FeedRecords, titles: list[str], *, failing: set[int], moved: int | None
) -> list[FetchOutcome]:
    """One fetch of every feed: ``titles`` as items, except the ``failing`` feeds (a 500) and
    one feed ``moved`` to a new address."""
    states = {feed.url: feed for feed in records.feed_states()}
    made = []
    for n, source in enumerate(SOURCES):
        state = states.get(source.url) or next(
            feed for feed in states.values() if feed.name == source.name
        )
        if n in failing:
            result = FetchResult(source, 500, error="HTTP 500", elapsed=0.2)
            items: tuple[Item, ...] = ()
        else:
            result = FetchResult(source, 200, body=b"x", elapsed=0.1)
            items = tuple(
                make_item(title, source.name, summary=f"About {title}") for title in titles
            )
        update = decide(result, len(items), state, BASE)
        if n == moved:
            update = replace(update, moved_to=f"https://moved{n}.example.com/rss")
        made.append(FetchOutcome(state.url, update, items))
    return made


def _tables(url: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
        feeds = connection.execute("SELECT * FROM feeds ORDER BY id").fetchall()
        items = connection.execute("SELECT * FROM items ORDER BY id").fetchall()
    return feeds, items


_titles = st.lists(st.text(min_size=1, max_size=30), min_size=0, max_size=4)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    passes=st.lists(
        st.tuples(_titles, st.sets(st.integers(0, 3)), st.none() | st.integers(0, 3)),
        min_size=1,
        max_size=3,
    ),
    configured=st.sets(st.integers(0, 3), min_size=1),
)
def test_the_light_store_writes_what_the_full_store_writes(
    tmp_path_factory: pytest.TempPathFactory,
    passes: list[tuple[list[str], set[int], int | None]],
    configured: set[int],
) -> None:
    folder = tmp_path_factory.mktemp("stores")
    full_url, light_url = _migrated(folder / "full.db"), _migrated(folder / "light.db")
    for records in (Store(full_url), _light(light_url)):
        try:
            records.sync_feeds(SOURCES)
            for titles, failing, moved in passes:
                records.save_fetches(_outcomes(records, titles, failing=failing, moved=moved), BASE)
            records.sync_feeds([SOURCES[n] for n in sorted(configured)])
        finally:
            records.close()
    assert _tables(full_url) == _tables(light_url)
    full, light = Store(full_url), _light(light_url)
    try:
        assert full.feed_states() == light.feed_states()
    finally:
        full.close()
        light.close()


@settings(max_examples=30, deadline=None)
@given(
    published=st.datetimes(
        min_value=dt.datetime(1970, 1, 1),
        max_value=dt.datetime(2200, 1, 1),
        timezones=st.just(dt.UTC),
    )
)
def test_times_the_light_store_writes_read_back_through_sqlalchemy(
    tmp_path_factory: pytest.TempPathFactory, published: dt.datetime
) -> None:
    url = _migrated(tmp_path_factory.mktemp("times") / "digest.db")
    light = _light(url)
    try:
        light.sync_feeds(SOURCES[:1])
        item = replace(make_item("Chips rally", SOURCES[0].name), published=published)
        (state,) = light.feed_states()
        update = decide(FetchResult(SOURCES[0], 200, body=b"x"), 1, state, BASE)
        assert light.save_fetches([FetchOutcome(state.url, update, (item,))], BASE) == [1]
        (again,) = light.feed_states()
        assert again.last_attempt == BASE and again.stored_items == 1
    finally:
        light.close()
    store = Store(url)
    try:
        (stored,) = store.items_between(published, published + dt.timedelta(microseconds=1))
    finally:
        store.close()
    assert stored.published == published
    assert stored.title == "Chips rally"


def _rss(feed: int, items: int) -> bytes:
    entries = "".join(
        f"<item><title>Feed {feed} story {n}</title><link>https://f{feed}.example.com/{n}</link>"
        f"<description>{'Shares moved on the news. ' * 80}</description>"
        "<pubDate>Tue, 24 Nov 2026 05:00:00 GMT</pubDate></item>"
        for n in range(items)
    )
    return (
        f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{entries}'.encode()
        + (b"</channel></rss>")
    )


def test_a_disk_that_fills_mid_fetch_is_one_line_and_leaves_nothing_half_written(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feeds = []
    for n in range(3):
        feed_server.routes[f"/f/{n}"] = Route(_rss(n, 40))
        feeds.append({"name": f"Feed {n}", "url": feed_server.url(f"/f/{n}"), "section": "stocks"})
    config = write_config(tmp_path, feeds)
    database = tmp_path / "digest.db"
    _migrated(database)
    env = {**os.environ, "DIGEST_DB": _url(database)}
    command = [sys.executable, "-m", "digest", "--config", str(config), "fetch"]

    def small_disk() -> None:
        # No file of this process may grow past 64 KiB: the write-ahead log fills first.
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))

    full = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=120, preexec_fn=small_disk
    )
    assert full.returncode == 1
    (line,) = full.stderr.strip().splitlines()
    assert line.startswith("Error: ") and str(database) in line, line
    with sqlite3.connect(database) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert connection.execute("SELECT count(*) FROM items").fetchone() == (0,)
    roomy = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert roomy.returncode == 0, roomy.stderr
    with sqlite3.connect(database) as connection:
        assert connection.execute("SELECT count(*) FROM items").fetchone() == (120,)
