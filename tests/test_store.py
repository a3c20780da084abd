from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import event, select
from sqlalchemy.exc import IntegrityError

from digest.enrolment import Outcome
from digest.errors import StoreError
from digest.health import decide
from digest.lifecycle import Mail, State
from digest.models import (
    FeedSource,
    FetchOutcome,
    FetchResult,
    Item,
    Section,
    Subscriber,
    Validators,
)
from digest.store import Store, feed_rows, schema
from digest.store._database import driver_rows

from .conftest import digest_command, write_config
from .factories import BASE, make_item

SOURCE = FeedSource("Wire", "https://wire.example.com/rss", Section.STOCKS, 1.2)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    store = Store(db_url)
    store.sync_feeds([SOURCE])
    yield store
    store.close()


def record(store: Store, result: FetchResult, items: list[Item], now: dt.datetime) -> int:
    """What a fetch does: the health rules decide, the store writes."""
    (feed,) = [feed for feed in store.feed_states() if feed.url == result.source.url]
    return store.save_fetch(feed.url, decide(result, len(items), feed, now), items, now)


def ok(body: bytes = b"x", etag: str | None = None) -> FetchResult:
    return FetchResult(SOURCE, 200, body=body, validators=Validators(etag=etag))


def test_schema_is_migrated_once_and_uses_wal(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'digest.db'}"
    first = Store(url)
    with first.engine.connect() as connection:
        assert schema.schema_version(connection) == len(schema.MIGRATIONS)
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    first.close()
    Store(url).close()  # a second open finds nothing to migrate and does not fail


def test_an_item_is_stored_once_and_updated(store: Store) -> None:
    item = make_item("Nvidia beats estimates", "Wire")
    assert record(store, ok(), [item], BASE) == 1
    retitled = make_item("Nvidia beats estimates, shares jump", "Wire", link=item.link)
    assert record(store, ok(), [retitled], BASE) == 0
    items = store.items_between(BASE - dt.timedelta(days=1), BASE)
    assert [i.title for i in items] == ["Nvidia beats estimates, shares jump"]
    assert items[0].source_name == "Wire" and items[0].weight == 1.2


def test_stored_items_read_back_as_they_were_written(store: Store) -> None:
    # Written in bulk through the driver: every field, and dates with and without a fraction
    # of a second, come back as they went in, on each database.
    items = [
        replace(
            make_item(f"Story {n}", "Wire", summary=f"Summary {n} é ✓"),
            feed_url=SOURCE.url,
            source_name=SOURCE.name,
            weight=SOURCE.weight,
            published=BASE - dt.timedelta(hours=n, microseconds=n * 123_457),
        )
        for n in range(1, 4)
    ]
    assert record(store, ok(), items, BASE) == 3
    assert store.items_between(BASE - dt.timedelta(days=1), BASE) == sorted(
        items, key=lambda item: item.published
    )


def test_health_counts_failures_and_resets_on_success(store: Store) -> None:
    failed = FetchResult(SOURCE, 500, error="HTTP 500")
    record(store, failed, [], BASE)
    record(store, failed, [], BASE)
    (health,) = store.feed_states()
    assert health.consecutive_failures == 2
    assert health.last_error == "HTTP 500" and health.last_success is None
    record(store, ok(etag='"v1"'), [make_item("A story", "Wire")], BASE)
    (health,) = store.feed_states()
    assert health.consecutive_failures == 0 and health.last_error is None
    assert health.last_success == BASE and health.last_item_count == 1
    assert store.validators()[SOURCE.url] == Validators(etag='"v1"')


def test_feeds_dropped_from_config_become_inactive(store: Store) -> None:
    record(store, ok(), [make_item("A story", "Wire")], BASE)
    other = FeedSource("Other", "https://other.example.com/rss", Section.CRYPTO)
    store.sync_feeds([other])
    assert {(h.name, h.active) for h in store.feed_states()} == {("Wire", False), ("Other", True)}
    assert store.items_between(BASE - dt.timedelta(days=1), BASE) == []


def test_subscribers_add_unsubscribe_and_come_back_only_by_their_confirmation(
    store: Store,
) -> None:
    assert store.add_subscriber(Subscriber("a@example.com", "A"), BASE)
    assert not store.add_subscriber(Subscriber("a@example.com"), BASE)
    assert store.unsubscribe("a@example.com", BASE)
    assert not store.unsubscribe("a@example.com", BASE)
    assert store.subscribers(active_only=True) == []
    # Adding again is not how an unsubscribed address comes back; their own confirmation is.
    assert not store.add_subscriber(Subscriber("a@example.com"), BASE, confirmed=True)
    assert store.subscribers(active_only=True) == []
    later = BASE + dt.timedelta(days=1)
    signed_up = store.sign_up("A@Example.com", later)
    assert signed_up.notice is not None and signed_up.notice.mail is Mail.CONFIRMATION
    public_id = signed_up.subscriber.public_id
    before = BASE - dt.timedelta(hours=1)
    assert store.confirm(public_id, before, later) is None  # a link from before they left
    assert store.subscribers(active_only=True) == []
    confirmed = store.confirm(public_id, later, later)
    assert confirmed is not None and confirmed.notice is not None
    assert confirmed.notice.mail is Mail.WELCOME
    assert store.subscribers() == [Subscriber("a@example.com", "A", True)]
    again = store.confirm(public_id, later, later)
    assert again is not None and again.notice is None  # already active: nothing to send
    assert store.remove_subscriber("a@example.com") == "a@example.com"
    assert store.remove_subscriber("a@example.com") is None


def test_every_change_of_state_is_in_the_history(store: Store) -> None:
    signed_up = store.sign_up("ann@example.com", BASE)
    assert signed_up.subscriber.active is False
    store.confirm(signed_up.subscriber.public_id, BASE, BASE + dt.timedelta(hours=1))
    store.leave("ann@example.com", State.BOUNCED, BASE + dt.timedelta(days=2), "550 no such user")
    # Weaker than a bounce: the bounce stays.
    assert not store.unsubscribe("ann@example.com", BASE + dt.timedelta(days=3))
    report = store.report("ANN@example.com")
    assert report is not None
    assert [(change.at, change.state, change.why) for change in report.history] == [
        (BASE, State.PENDING, "signed up on the web site"),
        (BASE + dt.timedelta(hours=1), State.ACTIVE, "confirmed with their own link"),
        (BASE + dt.timedelta(days=2), State.BOUNCED, "550 no such user"),
    ]
    assert report.record.state is State.BOUNCED
    assert report.record.since == BASE + dt.timedelta(days=2)
    assert store.record_by_public_id(signed_up.subscriber.public_id) == report.record
    assert store.record_by_public_id("0" * 32) is None


def test_a_new_address_is_pending_unless_confirmed(store: Store) -> None:
    (answer,) = store.enrol([Subscriber("ann@example.com")], BASE, confirmed=False)
    assert answer.outcome is Outcome.ADDED_PENDING
    assert answer.notice is not None and answer.notice.mail is Mail.CONFIRMATION
    assert answer.notice.subscriber.public_id  # as stored: its links can name it
    assert store.subscribers(active_only=True) == []
    (answer,) = store.enrol([Subscriber("ann@example.com")], BASE, confirmed=True)
    assert answer.outcome is Outcome.CONFIRMED and answer.notice is None
    assert store.subscribers(active_only=True) == [Subscriber("ann@example.com")]


def test_an_address_is_one_subscriber_in_any_letter_case(store: Store) -> None:
    answers = store.enrol(
        [Subscriber(email) for email in ("Dup@example.com", "dup@example.com", "DUP@example.com")],
        BASE,
    )
    assert [answer.outcome for answer in answers] == [
        Outcome.ADDED,
        Outcome.UNCHANGED,
        Outcome.UNCHANGED,
    ]
    assert store.subscribers() == [Subscriber("Dup@example.com")]
    assert store.subscriber("dUP@EXAMPLE.COM") == Subscriber("Dup@example.com")
    assert store.unsubscribe("DUP@example.com", BASE)
    assert store.subscribers(active_only=True) == []
    assert store.remove_subscriber("dup@EXAMPLE.com") == "Dup@example.com"
    assert store.subscribers() == []


def test_the_key_is_unique_in_the_database_too(store: Store) -> None:
    store.add_subscriber(Subscriber("Dup@example.com"), BASE)
    with (
        pytest.raises(IntegrityError, match=r"subscribers[._]email_key"),
        store.engine.begin() as connection,
    ):
        connection.execute(
            schema.subscribers.insert().values(
                email="dup@example.com",
                email_key="dup@example.com",
                name="",
                active=True,
                state="active",
                public_id="0" * 32,
                created_at=BASE.replace(tzinfo=None),
                watchlist="",
            )
        )


def test_an_address_unsubscribed_is_reported_with_its_date_and_kept(store: Store) -> None:
    store.add_subscriber(Subscriber("ann@example.com", "Ann", True, ("NVDA",)), BASE)
    store.unsubscribe("ann@example.com", BASE)
    (answer,) = store.enrol([Subscriber("ANN@example.com", "Annie")], BASE, update=True)
    assert answer.outcome is Outcome.SKIPPED_SUPPRESSED
    assert (answer.state, answer.since) == (State.UNSUBSCRIBED, BASE)
    assert store.subscribers() == [Subscriber("ann@example.com", "Annie", False, ("NVDA",))]


def test_deliveries_are_planned_once_and_marked(store: Store) -> None:
    from digest.rank import build_digest

    date = dt.date(2026, 11, 24)
    digest = build_digest(
        [],
        date=date,
        title="T",
        tagline="t",
        window=(BASE - dt.timedelta(days=1), BASE),
        max_stories=5,
    )
    store.save_edition(digest, BASE)
    for email in ("a@example.com", "b@example.com"):
        store.add_subscriber(Subscriber(email), BASE)
    assert store.plan_deliveries(date, lambda email: f"<{email}>") == 2
    assert store.plan_deliveries(date, lambda email: f"<{email}>") == 0
    store.mark_delivery(date, "a@example.com", BASE)
    store.mark_delivery(date, "b@example.com", BASE, error="550 no")
    assert store.problem_deliveries(date) == [("b@example.com", "failed", "550 no")]
    assert store.delivery_counts(date) == {"sent": 1, "failed": 1}
    assert store.claim(date, "run", 10, BASE) == []  # both are final
    assert store.load_edition(date) == digest
    with store.engine.connect() as connection:
        ids = connection.execute(select(schema.deliveries.c.message_id)).scalars().all()
    assert sorted(ids) == ["<a@example.com>", "<b@example.com>"]


def test_deliveries_are_planned_a_chunk_at_a_time_each_subscriber_once(store: Store) -> None:
    from digest.rank import build_digest

    date = dt.date(2026, 11, 24)
    window = (BASE - dt.timedelta(days=1), BASE)
    digest = build_digest([], date=date, title="T", tagline="t", window=window, max_stories=5)
    store.save_edition(digest, BASE)
    people = [f"p{n}@example.com" for n in range(7)]
    store.enrol([Subscriber(email) for email in people[:5]], BASE)
    store.unsubscribe(people[1], BASE)
    assert store.plan_deliveries(date, lambda email: f"<{email}>", chunk=2) == 4
    store.enrol([Subscriber(email) for email in people[5:]], BASE)
    assert store.plan_deliveries(date, lambda email: f"<{email}>", chunk=2) == 2
    with store.engine.connect() as connection:
        planned = connection.execute(select(schema.deliveries.c.recipient)).scalars().all()
    assert sorted(planned) == sorted(set(people) - {people[1]})


def test_unopenable_database_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(f"sqlite:///{tmp_path / 'missing-dir' / 'digest.db'}")


def test_a_database_whose_driver_is_missing_is_one_line_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # However this environment is set up, neither PostgreSQL driver can be imported.
    monkeypatch.setitem(sys.modules, "psycopg", None)
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    config = write_config(tmp_path, [{"name": "Wire", "url": SOURCE.url, "section": "stocks"}])
    listed = digest_command(
        "subscribers",
        "list",
        config=config,
        env={"DIGEST_DB": "postgresql://digest:s3cret@db.example.com:5432/digest"},
    )
    assert listed.returncode == 1
    assert listed.stderr.splitlines() == [
        "Error: postgresql://digest:***@db.example.com:5432/digest: the PostgreSQL driver is "
        "not installed (psycopg): pip install 'market-digest[postgres]'"
    ]
    assert "s3cret" not in listed.stdout + listed.stderr


def test_a_database_that_cannot_be_opened_is_named_without_its_password() -> None:
    with pytest.raises(StoreError) as refused:
        Store("sqlite+nosuchdriver://digest:s3cret@localhost/digest")
    assert "s3cret" not in str(refused.value)
    assert str(refused.value).startswith("sqlite+nosuchdriver://digest:***@localhost/digest: ")


def many_feeds(store: Store, count: int) -> list[FeedSource]:
    sources = [
        FeedSource(f"Feed {n}", f"https://f{n}.example.com/rss", Section.STOCKS)
        for n in range(count)
    ]
    store.sync_feeds(sources)
    return sources


def outcomes(store: Store, sources: list[FeedSource], titles: list[str]) -> list[FetchOutcome]:
    """Each feed's fetch, giving one item per title."""
    states = {feed.url: feed for feed in store.feed_states()}
    made = []
    for source in sources:
        items = tuple(make_item(f"{title} {source.name}", source.name) for title in titles)
        result = FetchResult(source, 200, body=b"x")
        update = decide(result, len(items), states[source.url], BASE)
        made.append(FetchOutcome(source.url, update, items))
    return made


def test_many_feeds_are_written_with_as_many_statements_as_one(tmp_path: Path) -> None:
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(statement.split()[0])

    sizes = {}
    for feeds in (2, 60):
        store = Store(f"sqlite:///{tmp_path / f'{feeds}.db'}")
        sources = many_feeds(store, feeds)
        event.listen(store.engine, "before_cursor_execute", count)
        statements.clear()
        store.save_fetches(outcomes(store, sources, ["Chips rally", "Oil slips"]), BASE)
        sizes[feeds] = list(statements)
        store.close()
    assert sizes[2] == sizes[60]
    assert sizes[60].count("INSERT") == 1 and sizes[60].count("UPDATE") == 1


def test_bulk_writes_count_new_items_per_feed_and_refresh_known_ones(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    sources = many_feeds(store, 3)
    assert store.save_fetches(outcomes(store, sources, ["Chips rally"]), BASE) == [1, 1, 1]
    again = outcomes(store, sources[:2], ["Chips rally", "Oil slips", "Gold holds"])
    assert store.save_fetches(again, BASE) == [2, 2]
    stored = store.items_between(BASE - dt.timedelta(days=1), BASE)
    assert len(stored) == 7
    assert {feed.name: feed.stored_items for feed in store.feed_states()} == {
        "Feed 0": 3,
        "Feed 1": 3,
        "Feed 2": 1,
    }
    store.close()


def test_a_feed_removed_while_it_was_fetched_is_skipped(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    sources = many_feeds(store, 2)
    made = outcomes(store, sources, ["Chips rally"])
    gone = FeedSource("Added", "https://added.example.com/rss", Section.STOCKS)
    store.add_feed(gone)
    (added,) = outcomes(store, [gone], ["Oil slips"])
    store.remove_feed(gone.url)
    assert store.save_fetches([made[0], added, made[1]], BASE) == [1, 0, 1]
    store.close()


def test_two_feeds_moved_to_one_address_in_one_batch_move_once(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'digest.db'}")
    sources = many_feeds(store, 2)
    moved = [
        replace(outcome, update=replace(outcome.update, moved_to="https://new.example.com/rss"))
        for outcome in outcomes(store, sources, ["Chips rally"])
    ]
    store.save_fetches(moved, BASE)
    assert sorted(feed.url for feed in store.feed_states()) == [
        "https://f1.example.com/rss",
        "https://new.example.com/rss",
    ]
    store.close()


def test_new_items_are_inserted_skipping_rows_another_writer_stored(db_url: str) -> None:
    # Another writer stores the same (feed, key) between our lookup and our insert: the
    # insert skips its row instead of failing the batch.
    store = Store(db_url)
    (source,) = many_feeds(store, 1)
    (outcome,) = outcomes(store, [source], ["Chips rally"])
    assert store.save_fetches([outcome], BASE) == [1]
    item = outcome.items[0]
    with store.begin() as c:
        rows = driver_rows(c)
        ((feed_id,),) = rows.run("SELECT id FROM feeds WHERE url = ?", [source.url])
        published = feed_rows.stored_time(item.published, rows.dialect)
        row = ("Another title", item.link, "", "", published, feed_id, item.key, published)
        rows.run_many(feed_rows.INSERT_ITEM, [row])
    (stored,) = store.items_between(BASE - dt.timedelta(days=1), BASE)
    assert stored.title == item.title
    store.close()
