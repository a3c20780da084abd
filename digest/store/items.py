"""The items table: each feed's articles, one row per feed and key."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, Insert, bindparam, select

from ..models import Item, Section
from . import schema as s
from ._database import Database, naive_utc
from .bulk import execute_many, insert_skipping

#: Keys looked up in one query: far below any database's limit on bound parameters.
LOOKUP_CHUNK = 500

_REFRESH = s.items.update().where(s.items.c.id == bindparam("row_id"))
_KNOWN = select(s.items.c.feed_id, s.items.c.key, s.items.c.id).where(
    s.items.c.feed_id.in_(bindparam("feed_ids", expanding=True)),
    s.items.c.key.in_(bindparam("keys", expanding=True)),
)


def save_items(
    c: Connection, batch: Sequence[tuple[int, Sequence[Item]]], now: dt.datetime
) -> list[int]:
    """Insert new items and refresh known ones of many feeds in the caller's transaction.

    ``batch`` pairs feed ids with their items; returns how many of each feed's are new.
    One lookup per ``LOOKUP_CHUNK`` keys, then one executemany for the new rows and one for
    the known ones, whatever the number of feeds.
    """
    unique: dict[tuple[int, str], Item] = {}
    for feed_id, items in batch:
        for item in items:
            unique[(feed_id, item.key)] = item
    if not unique:
        return [0] * len(batch)
    known = _known(c, list(unique))
    first_seen = naive_utc(now)
    inserts: list[dict[str, Any]] = []
    refreshes: list[dict[str, Any]] = []
    new: Counter[int] = Counter()
    for (feed_id, key), item in unique.items():
        values = {
            "title": item.title,
            "link": item.link,
            "summary_text": item.summary_text,
            "summary_html": item.summary_html,
            "published": naive_utc(item.published),
        }
        row_id = known.get((feed_id, key))
        if row_id is None:
            inserts.append({"feed_id": feed_id, "key": key, "first_seen": first_seen, **values})
            new[feed_id] += 1
        else:
            refreshes.append({"row_id": row_id, **values})
    execute_many(c, _REFRESH, refreshes)
    execute_many(c, insert_new_items(c.dialect.name), inserts)
    return [new[feed_id] for feed_id, _ in batch]


def _known(c: Connection, pairs: list[tuple[int, str]]) -> dict[tuple[int, str], int]:
    """Row ids of the (feed id, key) pairs already stored."""
    wanted = set(pairs)
    found: dict[tuple[int, str], int] = {}
    for chunk in _chunks(pairs, LOOKUP_CHUNK):
        feed_ids = sorted({feed_id for feed_id, _ in chunk})
        keys = sorted({key for _, key in chunk})
        for row in c.execute(_KNOWN, {"feed_ids": feed_ids, "keys": keys}):
            pair = (row.feed_id, row.key)
            if pair in wanted:
                found[pair] = row.id
    return found


def _chunks(values: list[tuple[int, str]], size: int) -> Iterator[list[tuple[int, str]]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def insert_new_items(dialect: str) -> Insert:
    """An insert that skips a row another writer stored first, in this database's words."""
    return insert_skipping(s.items, ("feed_id", "key"), dialect)


class ItemStore(Database):
    def items_between(self, start: dt.datetime, end: dt.datetime) -> list[Item]:
        """Items of active feeds published in ``[start, end)``, one per link."""
        query = (
            select(
                s.items,
                s.feeds.c.url,
                s.feeds.c.name,
                s.feeds.c.section,
                s.feeds.c.weight,
                s.feeds.c.is_primary,
            )
            .join(s.feeds, s.items.c.feed_id == s.feeds.c.id)
            .where(
                s.feeds.c.active,
                s.items.c.published >= naive_utc(start),
                s.items.c.published < naive_utc(end),
            )
            .order_by(s.items.c.published, s.items.c.id)
        )
        with self.begin() as c:
            rows = c.execute(query).all()
        by_link: dict[str, Item] = {}
        for row in rows:
            by_link.setdefault(
                row.link,
                Item(
                    feed_url=row.url,
                    source_name=row.name,
                    section=Section(row.section),
                    weight=row.weight,
                    primary=row.is_primary,
                    key=row.key,
                    title=row.title,
                    link=row.link,
                    summary_text=row.summary_text,
                    summary_html=row.summary_html,
                    published=row.published.replace(tzinfo=dt.UTC),
                ),
            )
        return list(by_link.values())
