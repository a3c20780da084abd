"""Databases made by earlier market-digests are upgraded; one made by a later one is refused.

The old databases are built with raw SQL in the exact shape each version's code created
(``git log -p --follow digest/store/schema.py``), with rows as SQLAlchemy wrote them on SQLite.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Connection, inspect

from digest.cli import main
from digest.codec import encode_edition
from digest.errors import StoreError
from digest.health import decide, is_due
from digest.lifecycle import State
from digest.models import (
    DeliveryRecord,
    Digest,
    FeedSource,
    FetchResult,
    Item,
    Section,
    Story,
    Subscriber,
)
from digest.store import Store, schema

from .conftest import write_config
from .factories import BASE, make_item
from .postgres import Cluster

# -- the shapes of earlier versions --------------------------------------------------------

#: Version 1 as its code created it; ``{feeds}`` and ``{subscribers}`` mark where the
#: columns of later versions went when a database was created fresh by those versions.
TABLES = [
    """CREATE TABLE meta (
        "key" VARCHAR(64) NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY ("key")
    )""",
    """CREATE TABLE feeds (
        id INTEGER NOT NULL,
        url VARCHAR(2048) NOT NULL,
        name VARCHAR(200) NOT NULL,
        section VARCHAR(20) NOT NULL,
        weight FLOAT NOT NULL,
        active BOOLEAN NOT NULL,
        etag VARCHAR(1024),
        last_modified VARCHAR(128),
        last_attempt DATETIME,
        last_success DATETIME,
        last_status INTEGER,
        last_error TEXT,
        consecutive_failures INTEGER NOT NULL,
        last_item_count INTEGER NOT NULL,{feeds}
        PRIMARY KEY (id),
        UNIQUE (url)
    )""",
    """CREATE TABLE subscribers (
        id INTEGER NOT NULL,
        email VARCHAR(320) NOT NULL,
        name VARCHAR(200) NOT NULL,
        active BOOLEAN NOT NULL,
        created_at DATETIME NOT NULL,
        unsubscribed_at DATETIME,{subscribers}
        PRIMARY KEY (id),
        UNIQUE (email)
    )""",
    """CREATE TABLE editions (
        id INTEGER NOT NULL,
        date DATE NOT NULL,
        built_at DATETIME NOT NULL,
        payload TEXT NOT NULL,
        PRIMARY KEY (id),
        UNIQUE (date)
    )""",
    """CREATE TABLE items (
        id INTEGER NOT NULL,
        feed_id INTEGER NOT NULL,
        "key" VARCHAR(2048) NOT NULL,
        title TEXT NOT NULL,
        link VARCHAR(2048) NOT NULL,
        summary_text TEXT NOT NULL,
        summary_html TEXT NOT NULL,
        published DATETIME NOT NULL,
        first_seen DATETIME NOT NULL,
        PRIMARY KEY (id),
        CONSTRAINT items_feed_key UNIQUE (feed_id, "key"),
        FOREIGN KEY(feed_id) REFERENCES feeds (id) ON DELETE CASCADE
    )""",
    "CREATE INDEX ix_items_published ON items (published)",
    """CREATE TABLE deliveries (
        edition_id INTEGER NOT NULL,
        subscriber_id INTEGER NOT NULL,
        status VARCHAR(10) NOT NULL,
        message_id VARCHAR(255) NOT NULL,
        attempts INTEGER NOT NULL,
        sent_at DATETIME,
        error TEXT,
        PRIMARY KEY (edition_id, subscriber_id),
        FOREIGN KEY(edition_id) REFERENCES editions (id) ON DELETE CASCADE,
        FOREIGN KEY(subscriber_id) REFERENCES subscribers (id) ON DELETE CASCADE
    )""",
]

#: The columns each later version's code put into a freshly created table.
ADDED_BY = {
    2: (
        "feeds",
        [
            "origin VARCHAR(10) NOT NULL",
            "config_url VARCHAR(2048)",
            "next_attempt DATETIME",
            "gone_at DATETIME",
            "fetch_count INTEGER NOT NULL",
            "mean_response_ms FLOAT",
        ],
    ),
    3: ("subscribers", ["watchlist TEXT NOT NULL"]),
    4: ("feeds", ["is_primary BOOLEAN NOT NULL"]),
    5: ("subscribers", ["email_key VARCHAR(320) NOT NULL"]),
}

WIRE = "https://wire.example.com/rss"
OLD = "https://old.example.com/rss"
CLI_FEED = "https://cli.example.com/rss"
EDITION_DATE = dt.date(2026, 11, 24)
FETCHED = dt.datetime(2026, 11, 24, 5, 0, tzinfo=dt.UTC)


def _stamp(moment: dt.datetime) -> str:
    """A moment as SQLAlchemy's DateTime stores it in SQLite: naive UTC, microseconds."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def _ddl(version: int) -> list[str]:
    added: dict[str, str] = {"feeds": "", "subscribers": ""}
    for since, (table, columns) in ADDED_BY.items():
        if since <= version:
            added[table] += "".join(f"\n        {column}," for column in columns)
    statements = [statement.format(**added) for statement in TABLES]
    if version >= 5:
        statements.append("CREATE UNIQUE INDEX subscribers_email_key ON subscribers (email_key)")
    return statements


def _insert(con: sqlite3.Connection, table: str, row: dict[str, Any]) -> None:
    names = ", ".join(f'"{name}"' for name in row)
    marks = ", ".join("?" for _ in row)
    con.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(row.values()))


# -- the data an old database holds ----------------------------------------------------------

WIRE_ITEMS = [
    make_item("Nvidia beats estimates", "Wire", hours_ago=3, weight=1.5, summary="Record."),
    make_item("Fed holds rates", "Wire", hours_ago=2, weight=1.5),
]
OLD_ITEM = make_item("Old outlet story", "Old", hours_ago=1, section=Section.CRYPTO)


def _story(item: Item, score: float) -> Story:
    return Story(items=(item,), section=item.section, score=score)


EDITION = Digest(
    date=EDITION_DATE,
    title="Market Digest",
    tagline="Daily stocks & crypto headlines, free to your inbox",
    window_start=BASE - dt.timedelta(days=1),
    window_end=BASE,
    top=(_story(WIRE_ITEMS[0], 3.0),),
    sections=((Section.STOCKS, (_story(WIRE_ITEMS[1], 1.0),)),),
)


def _old_payload(digest: Digest) -> str:
    """The store's own payload, without the keys later versions added to it."""
    raw = json.loads(encode_edition(digest))
    stories = [*raw["top"], *(story for _, stories in raw["sections"] for story in stories)]
    for story in stories:
        del story["tickers"], story["earlier_outlets"]
        for item in story["items"]:
            del item["primary"]
    return json.dumps(raw)


def _old_database(path: Path, version: int) -> str:
    """A SQLite file as market-digest at schema ``version`` left it, with data; its URL."""
    con = sqlite3.connect(path)
    for statement in _ddl(version):
        con.execute(statement)
    fetched: dict[str, Any] = {
        "etag": '"abc"',
        "last_modified": "Tue, 24 Nov 2026 05:00:00 GMT",
        "last_attempt": _stamp(FETCHED),
        "last_success": _stamp(FETCHED),
        "last_status": 200,
        "consecutive_failures": 0,
        "last_item_count": 2,
    }
    feeds: list[dict[str, Any]] = [
        {"url": WIRE, "name": "Wire", "section": "stocks", "weight": 1.5, "active": 1, **fetched},
        # Dropped from the configuration: kept, inactive.
        {
            "url": OLD,
            "name": "Old",
            "section": "crypto",
            "weight": 1.0,
            "active": 0,
            **fetched,
            "last_status": 500,
            "last_error": "HTTP 500",
            "consecutive_failures": 4,
        },
    ]
    if version >= 2:
        for feed in feeds:
            feed.update(origin="config", config_url=feed["url"], fetch_count=5)
        feeds[0]["mean_response_ms"] = 120.0
        feeds.append(
            {
                "url": CLI_FEED,
                "name": "Cli",
                "section": "markets",
                "weight": 1.0,
                "active": 1,
                "consecutive_failures": 0,
                "last_item_count": 0,
                "origin": "cli",
                "fetch_count": 0,
            }
        )
    if version >= 4:
        for feed in feeds:
            feed["is_primary"] = 0
    for number, feed in enumerate(feeds, start=1):
        _insert(con, "feeds", {"id": number, **feed})
    for number, item in enumerate([*WIRE_ITEMS, OLD_ITEM], start=1):
        _insert(
            con,
            "items",
            {
                "id": number,
                "feed_id": 2 if item is OLD_ITEM else 1,
                "key": item.key,
                "title": item.title,
                "link": item.link,
                "summary_text": item.summary_text,
                "summary_html": item.summary_html,
                "published": _stamp(item.published),
                "first_seen": _stamp(FETCHED),
            },
        )
    people = [
        {"id": 1, "email": "ann@example.com", "name": "Ann", "active": 1},
        {
            "id": 2,
            "email": "bob@example.com",
            "name": "",
            "active": 0,
            "unsubscribed_at": _stamp(FETCHED),
        },
        {"id": 3, "email": "carol@example.com", "name": "Carol", "active": 1},
    ]
    for person in people:
        if version >= 3:
            person["watchlist"] = "NVDA BTC" if person["id"] == 1 else ""
        if version >= 5:
            person["email_key"] = person["email"]
        _insert(con, "subscribers", {**person, "created_at": _stamp(FETCHED)})
    built = _stamp(BASE)
    _insert(
        con,
        "editions",
        {"id": 1, "date": "2026-11-24", "built_at": built, "payload": _old_payload(EDITION)},
    )
    _insert(
        con,
        "deliveries",
        {
            "edition_id": 1,
            "subscriber_id": 1,
            "status": "sent",
            "message_id": "<1@example.com>",
            "attempts": 1,
            "sent_at": built,
        },
    )
    _insert(
        con,
        "deliveries",
        {
            "edition_id": 1,
            "subscriber_id": 3,
            "status": "failed",
            "message_id": "<3@example.com>",
            "attempts": 2,
            "error": "450 mailbox busy",
        },
    )
    _insert(con, "meta", {"key": "signing_key", "value": "kept-signing-key"})
    _insert(con, "meta", {"key": "schema_version", "value": str(version)})
    con.commit()
    con.close()
    return f"sqlite:///{path}"


def _dump(path: Path) -> list[str]:
    con = sqlite3.connect(path)
    try:
        return list(con.iterdump())
    finally:
        con.close()


def _version(store: Store) -> int:
    with store.engine.connect() as connection:
        return schema.schema_version(connection)


def _rows(path: Path, query: str) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(path)
    try:
        return con.execute(query).fetchall()
    finally:
        con.close()


def _assert_current_shape(store: Store) -> None:
    """Every table, column and index of the current schema is there, as declared."""
    inspector = inspect(store.engine)
    for table in schema.metadata.sorted_tables:
        found = {column["name"]: column for column in inspector.get_columns(table.name)}
        assert set(found) == {column.name for column in table.columns}, table.name
        for column in table.columns:
            assert found[column.name]["nullable"] == column.nullable, (table.name, column.name)
        indexes = {
            index["name"]: index["column_names"] for index in inspector.get_indexes(table.name)
        }
        for index in table.indexes:
            assert indexes.get(index.name) == [column.name for column in index.columns], index.name


# -- upgrades ---------------------------------------------------------------------------------


def test_a_version_1_database_with_data_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    url = _old_database(path, 1)

    store = Store(url)
    try:
        assert _version(store) == len(schema.MIGRATIONS)
        _assert_current_shape(store)

        # Defaults of the added columns.
        assert _rows(
            path, "SELECT url, origin, config_url, fetch_count, is_primary FROM feeds ORDER BY id"
        ) == [(WIRE, "config", WIRE, 0, 0), (OLD, "config", OLD, 0, 0)]
        assert _rows(path, "SELECT watchlist FROM subscribers") == [("",)] * 3

        # The old rows, through the store.
        assert store.feed_sources() == [FeedSource("Wire", WIRE, Section.STOCKS, 1.5, False)]
        wire, old = sorted(store.feed_states(), key=lambda health: health.url != WIRE)
        assert is_due(wire, FETCHED)  # no backoff pending
        assert (wire.name, wire.source.section, wire.active, wire.origin) == (
            "Wire",
            "stocks",
            True,
            "config",
        )
        assert wire.last_success == FETCHED and wire.last_attempt == FETCHED
        assert (wire.last_status, wire.last_item_count, wire.stored_items) == (200, 2, 2)
        assert wire.next_attempt is None and wire.gone_at is None
        assert wire.mean_response_ms is None
        assert (old.active, old.last_error, old.consecutive_failures) == (False, "HTTP 500", 4)
        assert old.stored_items == 1
        assert store.validators()[WIRE].etag == '"abc"'

        assert store.subscribers() == [
            Subscriber("ann@example.com", "Ann", True, ()),
            Subscriber("bob@example.com", "", False, ()),
            Subscriber("carol@example.com", "Carol", True, ()),
        ]
        assert store.items_between(BASE - dt.timedelta(days=1), BASE) == WIRE_ITEMS
        assert store.edition_dates() == [EDITION_DATE]
        assert store.load_edition(EDITION_DATE) == EDITION
        assert store.edition_is_sent(EDITION_DATE)
        assert store.delivery_counts(EDITION_DATE) == {"sent": 1, "failed": 1}
        # The ledger keeps each row's recipient; an old failure stays one (5xx is final).
        assert [row[:2] for row in store.problem_deliveries(EDITION_DATE)] == [
            ("carol@example.com", "failed")
        ]
        assert store.signing_key() == "kept-signing-key"

        # The upgraded database works: the configured feed keeps its history and becomes a
        # primary source, fetch statistics start from the defaults, a watchlist can be set.
        store.sync_feeds([FeedSource("Wire", WIRE, Section.STOCKS, 1.5, primary=True)])
        (wire,) = [health for health in store.feed_states() if health.url == WIRE]
        assert wire.stored_items == 2 and wire.last_success == FETCHED
        assert [source.primary for source in store.feed_sources()] == [True]
        result = FetchResult(store.feed_sources()[0], 200, body=b"x", elapsed=0.25)
        update = decide(result, 0, wire, BASE)
        assert store.save_fetch(WIRE, update, [], BASE) == 0
        (wire,) = [health for health in store.feed_states() if health.url == WIRE]
        assert wire.mean_response_ms == 250.0
        added = store.add_subscriber(
            Subscriber("ann@example.com", watchlist=("NVDA",)), BASE, update=True
        )
        assert added is False
        assert store.subscribers()[0].watchlist == ("NVDA",)
    finally:
        store.close()

    before = _dump(path)
    again = Store(url)
    try:
        assert _version(again) == len(schema.MIGRATIONS)
    finally:
        again.close()
    assert _dump(path) == before


#: The versions whose tables ``_ddl`` can write; later ones are tested from these.
WRITTEN_VERSIONS = range(1, 5)


@pytest.mark.parametrize("version", WRITTEN_VERSIONS)
def test_each_older_version_is_upgraded_keeping_what_it_wrote(tmp_path: Path, version: int) -> None:
    path = tmp_path / "digest.db"
    url = _old_database(path, version)
    store = Store(url)
    try:
        assert _version(store) == len(schema.MIGRATIONS)
        _assert_current_shape(store)
        health = {row.url: row for row in store.feed_states()}
        assert health[WIRE].mean_response_ms == (120.0 if version >= 2 else None)
        assert health[WIRE].stored_items == 2 and health[OLD].stored_items == 1
        watchlists = [person.watchlist for person in store.subscribers()]
        assert watchlists == ([("NVDA", "BTC"), (), ()] if version >= 3 else [(), (), ()])
        assert [source.primary for source in store.feed_sources()] == [False] * (
            2 if version >= 2 else 1
        )
        assert store.load_edition(EDITION_DATE) == EDITION
    finally:
        store.close()
    expected: list[tuple[Any, ...]] = [(WIRE, "config", WIRE, 5 if version >= 2 else 0)]
    expected.append((OLD, "config", OLD, 5 if version >= 2 else 0))
    if version >= 2:
        # A feed added from the CLI has no configured URL, before and after.
        expected.append((CLI_FEED, "cli", None, 0))
    query = "SELECT url, origin, config_url, fetch_count FROM feeds ORDER BY id"
    assert _rows(path, query) == expected


# -- subscriber states ------------------------------------------------------------------------


@pytest.mark.parametrize("version", range(1, 6))
def test_active_and_unsubscribed_subscribers_get_states_history_and_public_ids(
    tmp_path: Path, version: int
) -> None:
    path = tmp_path / "digest.db"
    url = _old_database(path, version)
    con = sqlite3.connect(path)
    # An unsubscribe whose time an earlier version did not record.
    con.execute("UPDATE subscribers SET active = 0 WHERE id = 3")
    con.commit()
    con.close()
    store = Store(url)
    try:
        assert [(r.subscriber.email, r.state, r.since) for r in store.records()] == [
            ("ann@example.com", State.ACTIVE, FETCHED),
            ("bob@example.com", State.UNSUBSCRIBED, FETCHED),
            ("carol@example.com", State.UNSUBSCRIBED, FETCHED),
        ]
        # Only active ones get editions: ann had hers, and carol's failed one is not retried.
        active = store.subscribers(active_only=True)
        assert [(person.email, person.active) for person in active] == [("ann@example.com", True)]
        assert store.claim(EDITION_DATE, "test", 10, LATER) == []
        bob = store.report("bob@example.com")
        assert bob is not None
        assert [(c.at, c.state, c.why) for c in bob.history] == [
            (FETCHED, State.ACTIVE, "subscribed (before confirmations were asked for)"),
            (FETCHED, State.UNSUBSCRIBED, "unsubscribed"),
        ]
        carol = store.report("carol@example.com")
        assert carol is not None
        assert carol.history[-1].why == "unsubscribed (when was not recorded)"
        assert carol.deliveries == (
            DeliveryRecord(EDITION_DATE, "failed", 2, None, "450 mailbox busy"),
        )
        ids = [record.subscriber.public_id for record in store.records()]
        assert len(set(ids)) == 3 and all(re.fullmatch("[0-9a-f]{32}", i) for i in ids)
        ann = store.record_by_public_id(ids[0])
        assert ann is not None and ann.subscriber.email == "ann@example.com"
        # Unsubscribed stays so: adding bob again does not bring him back.
        assert not store.add_subscriber(Subscriber("bob@example.com"), BASE, confirmed=True)
        assert store.record("bob@example.com").state is State.UNSUBSCRIBED  # type: ignore[union-attr]
    finally:
        store.close()
    assert _rows(path, "SELECT id, state, active FROM subscribers ORDER BY id") == [
        (1, "active", 1),
        (2, "unsubscribed", 0),
        (3, "unsubscribed", 0),
    ]
    con = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="public_id"):
            con.execute("UPDATE subscribers SET public_id = ? WHERE id = 2", (ids[0],))
    finally:
        con.close()


# -- addresses that differ only in letter case ------------------------------------------------

EARLIER = FETCHED - dt.timedelta(days=30)
LATER = FETCHED + dt.timedelta(days=1)
LEFT = FETCHED + dt.timedelta(days=2)


def _with_duplicates(path: Path) -> str:
    """A version 4 database where earlier versions let letter case make new subscribers.

    Besides ``_old_database``'s ann (1, sent the edition), bob (2, unsubscribed) and carol
    (3, her delivery failed twice): two more copies of ann, one unsubscribed; an earlier
    copy of carol who was sent the edition; and dave twice, the later copy with a delivery.
    """
    url = _old_database(path, 4)
    con = sqlite3.connect(path)
    people: list[dict[str, Any]] = [
        {
            "id": 4,
            "email": "Ann@Example.com",
            "name": "Annie",
            "active": 1,
            "watchlist": "ETH NVDA",
        },
        {
            "id": 5,
            "email": "ANN@EXAMPLE.COM",
            "name": "",
            "active": 0,
            "unsubscribed_at": _stamp(LEFT),
            "watchlist": "SOL",
        },
        {"id": 6, "email": "Carol@example.com", "name": "", "active": 1, "watchlist": "BTC"},
        {"id": 7, "email": "Dave@example.com", "name": "", "active": 1, "watchlist": ""},
        {"id": 8, "email": "dave@example.com", "name": "Dave", "active": 1, "watchlist": ""},
    ]
    people[0]["watchlist"] = "ETH NVDA"
    created = {4: LATER, 5: LATER, 6: EARLIER, 7: FETCHED, 8: LATER}
    for person in people:
        _insert(con, "subscribers", {**person, "created_at": _stamp(created[person["id"]])})
    deliveries: list[dict[str, Any]] = [
        {"subscriber_id": 4, "status": "failed", "message_id": "<4@example.com>", "attempts": 1},
        {
            "subscriber_id": 6,
            "status": "sent",
            "message_id": "<6@example.com>",
            "attempts": 1,
            "sent_at": _stamp(BASE),
        },
        {"subscriber_id": 8, "status": "pending", "message_id": "<8@example.com>", "attempts": 0},
    ]
    for delivery in deliveries:
        _insert(con, "deliveries", {"edition_id": 1, **delivery})
    con.commit()
    con.close()
    return url


def test_duplicates_by_letter_case_are_merged_into_the_earliest_record(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    store = Store(_with_duplicates(path))
    try:
        assert _version(store) == len(schema.MIGRATIONS)
        _assert_current_shape(store)
        # The earliest copy keeps its address as written. Ann: a copy unsubscribed, so she
        # is (suppression wins); carol's earliest copy is the later id; names and watchlists
        # are gathered from every copy.
        assert store.subscribers() == [
            Subscriber("Carol@example.com", "Carol", True, ("BTC",)),
            Subscriber("Dave@example.com", "Dave", True, ()),
            Subscriber("ann@example.com", "Ann", False, ("NVDA", "BTC", "ETH", "SOL")),
            Subscriber("bob@example.com", "", False, ()),
        ]
        assert store.subscriber("CAROL@EXAMPLE.COM") == store.subscribers()[0]
        # Nobody is sent the edition twice: carol had it through her other copy, and ann
        # has left; dave's planned delivery moved to his earliest copy.
        assert store.delivery_counts(EDITION_DATE) == {"sent": 2, "queued": 1}
        (claimed,) = store.claim(EDITION_DATE, "test", 10, LEFT)
        assert claimed.subscriber.email == "Dave@example.com"
    finally:
        store.close()
    assert _rows(path, "SELECT id, email_key, unsubscribed_at FROM subscribers ORDER BY id") == [
        (1, "ann@example.com", _stamp(LEFT)),
        (2, "bob@example.com", _stamp(FETCHED)),
        (6, "carol@example.com", None),
        (7, "dave@example.com", None),
    ]
    assert _rows(
        path,
        "SELECT subscriber_id, recipient, status, message_id, attempts FROM deliveries"
        " ORDER BY subscriber_id",
    ) == [
        (1, "ann@example.com", "sent", "<1@example.com>", 2),
        (6, "Carol@example.com", "sent", "<6@example.com>", 3),
        (7, "Dave@example.com", "sending", "<8@example.com>", 0),
    ]
    con = sqlite3.connect(path)
    try:
        with pytest.raises(sqlite3.IntegrityError, match="email_key"):
            con.execute(
                "INSERT INTO subscribers (email, email_key, name, active, created_at, watchlist)"
                " VALUES ('ANN@example.com', 'ann@example.com', '', 1, '2026-11-24', '')"
            )
    finally:
        con.close()


def test_the_ledger_keeps_a_removed_subscribers_deliveries(tmp_path: Path) -> None:
    path = tmp_path / "digest.db"
    store = Store(_old_database(path, 4))
    try:
        assert store.remove_subscriber("ann@example.com") == "ann@example.com"
        assert store.delivery_counts(EDITION_DATE) == {"sent": 1, "failed": 1}
    finally:
        store.close()
    assert _rows(path, "SELECT subscriber_id, recipient, status FROM deliveries ORDER BY id") == [
        (None, "ann@example.com", "sent"),
        (3, "carol@example.com", "failed"),
    ]


# -- a database from a later market-digest ----------------------------------------------------


@pytest.fixture
def newer(tmp_path: Path) -> tuple[str, Path, int]:
    """A database a later market-digest migrated past this code's last version.

    Made by the store, as a later version would have, so it is already in WAL mode.
    """
    path = tmp_path / "newer.db"
    url = f"sqlite:///{path}"
    store = Store(url)
    store.add_subscriber(Subscriber("ann@example.com", "Ann"), BASE)
    store.close()
    version = len(schema.MIGRATIONS) + 3
    con = sqlite3.connect(path)
    con.execute("ALTER TABLE subscribers ADD COLUMN locale VARCHAR(16)")
    con.execute("CREATE TABLE bounces (id INTEGER PRIMARY KEY, subscriber_id INTEGER)")
    con.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(version),))
    con.commit()
    con.close()
    return url, path, version


def _refusal(url: str, version: int) -> str:
    return (
        f"{url}: the database is at schema version {version} but this market-digest knows "
        f"versions up to {len(schema.MIGRATIONS)}; upgrade market-digest "
        "(pip install -U market-digest) or point DIGEST_DB at another database"
    )


def test_a_newer_database_is_refused_untouched(newer: tuple[str, Path, int]) -> None:
    url, path, version = newer
    dump, raw = _dump(path), path.read_bytes()
    with pytest.raises(StoreError) as refused:
        Store(url)
    assert str(refused.value) == _refusal(url, version)
    assert _dump(path) == dump
    assert path.read_bytes() == raw
    assert _rows(path, "SELECT value FROM meta WHERE key = 'schema_version'") == [(str(version),)]


def test_the_cli_reports_a_newer_database_in_one_line(
    newer: tuple[str, Path, int], tmp_path: Path
) -> None:
    url, path, version = newer
    dump = _dump(path)
    config = write_config(tmp_path, [{"name": "Wire", "url": WIRE, "section": "stocks"}])
    result = CliRunner().invoke(
        main,
        ["--config", str(config), "subscribers", "list"],
        env={"DIGEST_DB": url, "COLUMNS": "250"},
    )
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"Error: {_refusal(url, version)}"]
    assert "Traceback" not in result.output and "ann@example.com" not in result.output
    assert _dump(path) == dump


def test_a_failed_migration_leaves_the_database_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    Store(url).close()

    def half_done(connection: Connection) -> None:
        connection.exec_driver_sql("ALTER TABLE feeds ADD COLUMN doomed INTEGER")
        raise RuntimeError("disk full")

    monkeypatch.setattr(schema, "MIGRATIONS", [*schema.MIGRATIONS, half_done])
    with pytest.raises(RuntimeError, match="disk full"):
        Store(url)
    monkeypatch.undo()
    store = Store(url)
    try:
        with store.engine.connect() as connection:
            assert schema.schema_version(connection) == len(schema.MIGRATIONS)
            columns = {row[1] for row in connection.exec_driver_sql("PRAGMA table_info(feeds)")}
        assert "doomed" not in columns
    finally:
        store.close()


# -- the same upgrades on PostgreSQL ----------------------------------------------------------

#: Columns SQLite keeps as 0 and 1, PostgreSQL as booleans.
BOOLEANS = {"active", "is_primary"}


def _on_postgresql(path: Path, url: str, version: int) -> None:
    """The old SQLite database at ``path`` as the same version's code made it on PostgreSQL:
    the same tables (ids from sequences, timestamps without time zone) and rows."""
    from sqlalchemy import create_engine, text

    translated = [
        statement.replace("id INTEGER NOT NULL,", "id SERIAL NOT NULL,", 1)
        .replace("DATETIME", "TIMESTAMP WITHOUT TIME ZONE")
        .replace("FLOAT", "DOUBLE PRECISION")
        for statement in _ddl(version)
    ]
    old = sqlite3.connect(path)
    old.row_factory = sqlite3.Row
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            for statement in translated:
                connection.execute(text(statement))
            for table in ("meta", "feeds", "subscribers", "editions", "items", "deliveries"):
                for row in old.execute(f"SELECT * FROM {table}"):
                    values = {
                        name: bool(row[name]) if name in BOOLEANS else row[name]
                        for name in row.keys()  # noqa: SIM118 (a sqlite3.Row is no dict)
                    }
                    names = ", ".join(f'"{name}"' for name in values)
                    marks = ", ".join(f":{name}" for name in values)
                    insert = f"INSERT INTO {table} ({names}) VALUES ({marks})"
                    connection.execute(text(insert), values)
            for table in ("feeds", "subscribers", "editions", "items"):
                connection.execute(
                    text(f"SELECT setval('{table}_id_seq', (SELECT max(id) FROM {table}))")
                )
    finally:
        engine.dispose()
        old.close()


#: Version 5's code could not create a database on PostgreSQL (two names clashed), so
#: the versions there are the ones before.
@pytest.mark.parametrize("version", WRITTEN_VERSIONS)
def test_each_older_version_is_upgraded_on_postgresql(
    tmp_path: Path, postgres: Cluster, version: int
) -> None:
    path = tmp_path / "digest.db"
    _old_database(path, version)
    url = postgres.create_database(f"version_{version}")
    _on_postgresql(path, url, version)
    store = Store(url)
    try:
        assert _version(store) == len(schema.MIGRATIONS)
        _assert_current_shape(store)
        assert store.load_edition(EDITION_DATE) == EDITION
        health = {row.url: row for row in store.feed_states()}
        assert health[WIRE].stored_items == 2 and health[OLD].stored_items == 1
        assert [(r.subscriber.email, r.state) for r in store.records()] == [
            ("ann@example.com", State.ACTIVE),
            ("bob@example.com", State.UNSUBSCRIBED),
            ("carol@example.com", State.ACTIVE),
        ]
        assert store.delivery_counts(EDITION_DATE) == {"sent": 1, "failed": 1}
        # The migrated database takes new rows: its sequences go on after the old ids.
        assert store.add_subscriber(Subscriber("dan@example.com"), BASE, confirmed=True)
        assert store.plan_deliveries(EDITION_DATE, lambda email: f"<{email}>") == 1
        indexes = {
            index["name"]: index for index in inspect(store.engine).get_indexes("subscribers")
        }
        assert indexes["subscribers_email_key"]["column_names"] == ["email_key"]
        assert indexes["subscribers_email_key"]["unique"]
    finally:
        store.close()
