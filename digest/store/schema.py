"""The whole database schema, in one place, with its numbered migrations.

Tables are SQLAlchemy Core, so the same code runs on SQLite (the default) and PostgreSQL.
A migration is applied once, in a transaction, and recorded in ``meta.schema_version``.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Unicode,
    UniqueConstraint,
    inspect,
    select,
    text,
)

from ..addresses import address_key
from ..errors import StoreError

metadata = MetaData()

meta = Table(
    "meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("url", String(2048), nullable=False, unique=True),
    Column("name", String(200), nullable=False),
    Column("section", String(20), nullable=False),
    Column("weight", Float, nullable=False, default=1.0),
    Column("active", Boolean, nullable=False, default=True),
    Column("etag", String(1024)),
    Column("last_modified", String(128)),
    Column("last_attempt", DateTime),
    Column("last_success", DateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("consecutive_failures", Integer, nullable=False, default=0),
    Column("last_item_count", Integer, nullable=False, default=0),
    # Added by migration 2.
    Column("origin", String(10), nullable=False, default="config"),
    Column("config_url", String(2048)),
    Column("next_attempt", DateTime),
    Column("gone_at", DateTime),
    Column("fetch_count", Integer, nullable=False, default=0),
    Column("mean_response_ms", Float),
    # Added by migration 4.
    Column("is_primary", Boolean, nullable=False, default=False),
)

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE"), nullable=False),
    Column("key", String(2048), nullable=False),
    Column("title", Text, nullable=False),
    Column("link", String(2048), nullable=False),
    Column("summary_text", Text, nullable=False),
    Column("summary_html", Text, nullable=False),
    Column("published", DateTime, nullable=False, index=True),
    Column("first_seen", DateTime, nullable=False),
    UniqueConstraint("feed_id", "key", name="items_feed_key"),
)

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("name", String(200), nullable=False, default=""),
    Column("active", Boolean, nullable=False, default=True),
    Column("created_at", DateTime, nullable=False),
    Column("unsubscribed_at", DateTime),
    # Added by migration 3: space-separated symbols.
    Column("watchlist", Text, nullable=False, default=""),
    # Added by migration 5: ``address_key(email)``, which makes an address one subscriber
    # whatever its letter case. Always written with the email; no default would be right.
    Column("email_key", String(320), nullable=False),
    # Added by migration 7: the lifecycle state (``digest.lifecycle.State``). ``active`` is
    # kept equal to state == "active", the one state that gets editions, so every query
    # of who gets mail stays as it was; ``unsubscribed_at`` is when a suppressed state began.
    Column("state", String(12), nullable=False, default="active"),
    # Added by migration 7: the random id personal links name (``digest.tokens``).
    Column("public_id", String(32), nullable=False),
    # Named: PostgreSQL would call it subscribers_email_key, the name of the index below.
    UniqueConstraint("email", name="subscribers_email"),
)
subscribers_email_key = Index("subscribers_email_key", subscribers.c.email_key, unique=True)
subscribers_public_id = Index("subscribers_public_id", subscribers.c.public_id, unique=True)

#: Added by migration 7: each subscriber's history, one row per change of state.
subscriber_changes = Table(
    "subscriber_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column(
        "subscriber_id",
        Integer,
        ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("at", DateTime, nullable=False),
    Column("state", String(12), nullable=False),
    Column("why", Text, nullable=False),
)

editions = Table(
    "editions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("date", Date, nullable=False, unique=True),
    Column("built_at", DateTime, nullable=False),
    Column("payload", Text, nullable=False),
)

deliveries = Table(
    "deliveries",
    metadata,
    # The send ledger (migration 6 gave it this shape): one row per edition and subscriber,
    # queued → sending → sent | deferred | failed | bounced | unknown | cancelled (ledger.py).
    Column("id", Integer, primary_key=True),
    Column("edition_id", Integer, ForeignKey("editions.id", ondelete="CASCADE"), nullable=False),
    # Emptied, not deleted, when the subscriber is removed: the ledger keeps its history.
    Column("subscriber_id", Integer, ForeignKey("subscribers.id", ondelete="SET NULL")),
    #: The address the message went to, as it was then.
    Column("recipient", String(320), nullable=False),
    Column("status", String(10), nullable=False, default="queued"),
    Column("message_id", String(255), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("sent_at", DateTime),
    Column("error", Text),
    #: The server's last reply code, if it answered.
    Column("smtp_code", Integer),
    Column("first_attempt", DateTime),
    #: When a deferred message is tried again; for one a worker holds (claimed, or sending
    #: under ``digest send --worker``), when its lease lapses.
    Column("next_attempt", DateTime),
    Column("updated_at", DateTime),
    #: The sending run that claimed the row (its journal names the same run).
    Column("claim", String(64)),
    UniqueConstraint("edition_id", "subscriber_id", name="deliveries_edition_subscriber"),
)
deliveries_status = Index("deliveries_status", deliveries.c.edition_id, deliveries.c.status)
#: Added by the worker-index migration. A worker takes the next batch of a status in id order:
#: with the id in the key PostgreSQL reads the batch off the index instead of sorting past the
#: rows already sent (SQLite's indexes carry the rowid anyway).
deliveries_queue = Index(
    "deliveries_queue", deliveries.c.edition_id, deliveries.c.status, deliveries.c.id
)
#: A worker renewing its lease or giving its rows back finds them by its claim.
deliveries_claim = Index("deliveries_claim", deliveries.c.claim)

#: Added by the sender-lease migration: who may send. One row per lease name; whoever holds
#: it renews ``expires_at`` well before it passes, and another process takes it once it has.
leases = Table(
    "leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200), nullable=False),
    Column("taken_at", DateTime, nullable=False),
    Column("expires_at", DateTime, nullable=False),
)

#: Sentence embeddings of titles, each computed once: the clusterer's default method reads them
#: instead of running the model again. Keyed by a digest of the model and the exact title, so
#: the same headline in several feeds is embedded once and an edited title gets a new row.
title_embeddings = Table(
    "title_embeddings",
    metadata,
    Column("digest", String(64), primary_key=True),
    #: float32, little-endian, unit length.
    Column("vector", LargeBinary, nullable=False),
)

#: Added by the scheduler migration: the jobs of ``digest serve`` (fetch, the edition, the retry)
#: as APScheduler's SQLAlchemy job store keeps them, so an edition's next run time survives a
#: restart and a takeover. The columns are the job store's own (``apscheduler.jobstores.
#: sqlalchemy``); it finds the table made and leaves it be.
scheduler_jobs = Table(
    "scheduler_jobs",
    metadata,
    Column("id", Unicode(191), primary_key=True),
    #: Seconds since the epoch, UTC; NULL for a paused job.
    Column("next_run_time", Float(25), index=True),
    #: The pickled job: its function by module path, its trigger and arguments.
    Column("job_state", LargeBinary, nullable=False),
)

_V1_TABLES = [meta, feeds, items, subscribers, editions, deliveries]


def _create_v1(connection: Connection) -> None:
    # A new database gets the current shape at once; later migrations then find their
    # columns present and only bring older databases up to date.
    metadata.create_all(connection, tables=_V1_TABLES)


def _add_columns(connection: Connection, table: Table, names: list[str]) -> None:
    present = {column["name"] for column in inspect(connection).get_columns(table.name)}
    for name in names:
        if name in present:
            continue
        column = table.c[name]
        kind = column.type.compile(dialect=connection.dialect)
        default = column.default.arg if column.default is not None else None  # type: ignore[attr-defined]
        clause = f" NOT NULL DEFAULT {default!r}" if default is not None else ""
        connection.execute(text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}{clause}"))


def _feed_health_v2(connection: Connection) -> None:
    """Feed origin (config or CLI), backoff, 410 Gone and response times."""
    _add_columns(
        connection,
        feeds,
        ["origin", "config_url", "next_attempt", "gone_at", "fetch_count", "mean_response_ms"],
    )
    connection.execute(
        feeds.update()
        .where(feeds.c.config_url.is_(None), feeds.c.origin == "config")
        .values(config_url=feeds.c.url)
    )


def _watchlist_v3(connection: Connection) -> None:
    """Each subscriber's watchlist of tickers and coins."""
    _add_columns(connection, subscribers, ["watchlist"])


def _primary_sources_v4(connection: Connection) -> None:
    """Which feeds are primary sources (companies, exchanges, regulators)."""
    _add_columns(connection, feeds, ["is_primary"])


def _one_subscriber_per_address_v5(connection: Connection) -> None:
    """Addresses that differ only in letter case become one subscriber, unique by its key.

    Earlier versions told ``Dup@Example.com`` and ``dup@example.com`` apart, so a database
    may hold both. Each such set is merged into its earliest record (its address as written
    there); see ``_merge_subscribers`` for what the merged record keeps.
    """
    present = {column["name"] for column in inspect(connection).get_columns(subscribers.name)}
    if connection.dialect.name == "postgresql":
        # There the unique constraint on email that version 1 made is named
        # subscribers_email_key, the name of the index below: give it its own name.
        unique = inspect(connection).get_unique_constraints(subscribers.name)
        if any(found["name"] == "subscribers_email_key" for found in unique):
            rename = "RENAME CONSTRAINT subscribers_email_key TO subscribers_email"
            connection.execute(text(f"ALTER TABLE subscribers {rename}"))
    if "email_key" not in present:
        kind = subscribers.c.email_key.type.compile(dialect=connection.dialect)
        # The DDL default only lets the column be added NOT NULL; every row is filled below.
        connection.execute(
            text(f"ALTER TABLE subscribers ADD COLUMN email_key {kind} NOT NULL DEFAULT ''")
        )
    # Only the columns this version knows: a later one may add more to the tables.
    c = subscribers.c
    rows = connection.execute(
        select(c.id, c.email, c.name, c.active, c.unsubscribed_at, c.watchlist).order_by(
            c.created_at, c.id
        )
    ).all()
    # Keys are written with the rule of this version; should ``address_key`` ever change,
    # a later migration has to write them again.
    copies_of: dict[str, list[Any]] = {}
    for row in rows:
        copies_of.setdefault(address_key(row.email), []).append(row)
    for key, (earliest, *later) in copies_of.items():
        if later:
            _merge_subscribers(connection, earliest, later)
        connection.execute(
            subscribers.update().where(subscribers.c.id == earliest.id).values(email_key=key)
        )
    subscribers_email_key.create(connection, checkfirst=True)


def _merge_subscribers(connection: Connection, earliest: Any, later: list[Any]) -> None:
    """Fold the ``later`` copies of one address into ``earliest``, deleting them.

    The merged subscriber is unsubscribed if any copy was (suppression wins: one of them
    asked for no more mail), since the first time one did; has the earliest copy's name, or
    else the first name a later one has; and watches every symbol any copy watched. Each
    edition keeps one delivery: a sent one if any copy had it sent (so nobody gets it twice),
    else the earliest copy's, with the attempts of all of them.
    """
    copies = [earliest, *later]
    values: dict[str, Any] = {
        "name": next((copy.name for copy in copies if copy.name), ""),
        "watchlist": " ".join(
            dict.fromkeys(symbol for copy in copies for symbol in copy.watchlist.split())
        ),
    }
    unsubscribed = [copy for copy in copies if not copy.active]
    if unsubscribed:
        dates = [copy.unsubscribed_at for copy in unsubscribed if copy.unsubscribed_at]
        values.update(active=False, unsubscribed_at=min(dates, default=None))
    ids = [copy.id for copy in copies]
    rank = {subscriber_id: place for place, subscriber_id in enumerate(ids)}
    d = deliveries.c
    planned: dict[int, list[Any]] = {}
    for delivery in connection.execute(
        select(
            d.edition_id, d.subscriber_id, d.status, d.message_id, d.attempts, d.sent_at, d.error
        ).where(d.subscriber_id.in_(ids))
    ):
        planned.setdefault(delivery.edition_id, []).append(delivery)
    for edition_id, rows in planned.items():
        sent = [row for row in rows if row.status == "sent"]
        kept = (
            min(sent, key=lambda row: row.sent_at or dt.datetime.max)
            if sent
            else min(rows, key=lambda row: rank[row.subscriber_id])
        )
        # The row that stays is the earliest copy's, or else the earliest one there is,
        # moved to it: updated rather than inserted, so no column a later version adds
        # is needed here.
        target = min(rows, key=lambda row: rank[row.subscriber_id])
        in_edition = d.edition_id == edition_id
        others = [row.subscriber_id for row in rows if row is not target]
        connection.execute(deliveries.delete().where(in_edition, d.subscriber_id.in_(others)))
        connection.execute(
            deliveries.update()
            .where(in_edition, d.subscriber_id == target.subscriber_id)
            .values(
                subscriber_id=earliest.id,
                status=kept.status,
                message_id=kept.message_id,
                sent_at=kept.sent_at,
                error=kept.error,
                attempts=sum(row.attempts for row in rows),
            )
        )
    connection.execute(subscribers.delete().where(subscribers.c.id.in_(ids[1:])))
    connection.execute(subscribers.update().where(subscribers.c.id == earliest.id).values(**values))


def _send_ledger_v6(connection: Connection) -> None:
    """Deliveries become the send ledger: a row id, the recipient's address kept with the row
    (a subscriber who leaves no longer takes the history along), and the in-flight,
    retry and claim columns. "pending" is now called "queued"."""
    present = {column["name"] for column in inspect(connection).get_columns(deliveries.name)}
    if "recipient" not in present:
        connection.execute(text("ALTER TABLE deliveries RENAME TO deliveries_v5"))
        if connection.dialect.name == "postgresql":
            # Index and constraint names are per schema there: free the old key's name.
            rename = "RENAME CONSTRAINT deliveries_pkey TO deliveries_v5_pkey"
            connection.execute(text(f"ALTER TABLE deliveries_v5 {rename}"))
        deliveries.create(connection)
        connection.execute(
            text(
                "INSERT INTO deliveries (edition_id, subscriber_id, recipient, status, message_id,"
                " attempts, sent_at, error)"
                " SELECT d.edition_id, d.subscriber_id, s.email,"
                " CASE d.status WHEN 'pending' THEN 'queued' ELSE d.status END,"
                " d.message_id, d.attempts, d.sent_at, d.error"
                " FROM deliveries_v5 d JOIN subscribers s ON s.id = d.subscriber_id"
            )
        )
        connection.execute(text("DROP TABLE deliveries_v5"))
    deliveries_status.create(connection, checkfirst=True)


def _lifecycle_v7(connection: Connection) -> None:
    """Subscriber states with their history, and the random ids personal links name.

    Before, an address was active or not: an active one becomes "active" and an inactive
    one "unsubscribed" (the only way one stopped), each with a history of what is known:
    subscribed when it was created, and unsubscribed when it did (its creation time when
    that was not recorded, as with some rows earlier versions merged).
    """
    present = {column["name"] for column in inspect(connection).get_columns(subscribers.name)}
    for name in ("state", "public_id"):
        if name in present:
            continue
        kind = subscribers.c[name].type.compile(dialect=connection.dialect)
        # Every row is written below; the default only lets the column be added NOT NULL.
        connection.execute(
            text(f"ALTER TABLE subscribers ADD COLUMN {name} {kind} NOT NULL DEFAULT ''")
        )
    subscriber_changes.create(connection, checkfirst=True)
    c = subscribers.c
    rows = connection.execute(
        select(c.id, c.active, c.created_at, c.unsubscribed_at).order_by(c.id)
    ).all()
    for row in rows:
        state = "active" if row.active else "unsubscribed"
        connection.execute(
            subscribers.update()
            .where(c.id == row.id)
            .values(state=state, public_id=secrets.token_hex(16))
        )
        history = [(row.created_at, "active", "subscribed (before confirmations were asked for)")]
        if not row.active:
            known = row.unsubscribed_at is not None
            history.append(
                (
                    row.unsubscribed_at if known else row.created_at,
                    "unsubscribed",
                    "unsubscribed" if known else "unsubscribed (when was not recorded)",
                )
            )
        connection.execute(
            subscriber_changes.insert(),
            [{"subscriber_id": row.id, "at": at, "state": s, "why": why} for at, s, why in history],
        )
    subscribers_public_id.create(connection, checkfirst=True)


def _sender_lease_v8(connection: Connection) -> None:
    """The leases table: one ``digest serve`` sends, the others only serve pages."""
    leases.create(connection, checkfirst=True)


def _title_embeddings_v9(connection: Connection) -> None:
    """The cache of title embeddings the clusterer's default method uses."""
    title_embeddings.create(connection, checkfirst=True)


def _scheduler_jobs_v10(connection: Connection) -> None:
    """The table ``digest serve`` keeps its scheduled jobs in."""
    scheduler_jobs.create(connection, checkfirst=True)


def _worker_indexes_v11(connection: Connection) -> None:
    """Indexes for ``digest send --worker``: the next batch by status and id, rows by claim."""
    deliveries_queue.create(connection, checkfirst=True)
    deliveries_claim.create(connection, checkfirst=True)


#: Numbered migrations; append, never edit one that has shipped.
MIGRATIONS: list[Callable[[Connection], None]] = [
    _create_v1,
    _feed_health_v2,
    _watchlist_v3,
    _primary_sources_v4,
    _one_subscriber_per_address_v5,
    _send_ledger_v6,
    _lifecycle_v7,
    _sender_lease_v8,
    _title_embeddings_v9,
    _scheduler_jobs_v10,
    _worker_indexes_v11,
]


def schema_version(connection: Connection) -> int:
    if not connection.dialect.has_table(connection, "meta"):
        return 0
    value = connection.execute(select(meta.c.value).where(meta.c.key == "schema_version"))
    found = value.scalar()
    return int(found) if found is not None else 0


def migrate(connection: Connection) -> int:
    """Apply pending migrations in the caller's transaction; return the new version.

    A database that a newer market-digest has migrated further is refused before anything
    is written, since this code cannot know what the later migrations changed.
    """
    current = schema_version(connection)
    if current > len(MIGRATIONS):
        url = connection.engine.url.render_as_string(hide_password=True)
        raise StoreError(
            f"{url}: the database is at schema version {current} but this market-digest knows "
            f"versions up to {len(MIGRATIONS)}; upgrade market-digest (pip install -U "
            "market-digest) or point DIGEST_DB at another database"
        )
    for version, step in enumerate(MIGRATIONS[current:], start=current + 1):
        step(connection)
        if version == 1:
            connection.execute(meta.insert().values(key="schema_version", value="1"))
        else:
            connection.execute(
                meta.update().where(meta.c.key == "schema_version").values(value=str(version))
            )
    return len(MIGRATIONS)
