"""The items table: each feed's articles, one row per feed and key."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select

from ..models import Item, Section
from . import schema as s
from ._database import Database
from .times import naive_utc


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
