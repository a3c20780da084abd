"""Small builders for test data."""

from __future__ import annotations

import datetime as dt

from digest.models import Item, Section

BASE = dt.datetime(2026, 11, 24, 6, 0, tzinfo=dt.UTC)


def make_item(
    title: str,
    source: str = "Wire",
    *,
    hours_ago: float = 1.0,
    section: Section = Section.STOCKS,
    weight: float = 1.0,
    summary: str = "",
    link: str | None = None,
) -> Item:
    slug = "-".join(title.lower().split())[:60]
    url = link or f"https://{source.lower().replace(' ', '')}.example.com/{slug}"
    return Item(
        feed_url=f"https://{source.lower().replace(' ', '')}.example.com/rss",
        source_name=source,
        section=section,
        weight=weight,
        key=url,
        title=title,
        link=url,
        summary_text=summary,
        summary_html=f"<p>{summary}</p>" if summary else "",
        published=BASE - dt.timedelta(hours=hours_ago),
    )
