"""Order stories and lay out the edition: top stories first, then Stocks and Crypto.

Pure: the window and ``now`` come in as arguments.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from .cluster import WINDOW, cluster_items
from .models import Digest, Item, Method, Section, Story
from .tickers import find_tickers, symbol_table
from .window import EDITION_SPAN

#: A story loses half its recency weight every this many hours.
RECENCY_HALF_LIFE_HOURS = 12.0
#: How many of the best stories lead the edition before the sections.
TOP_STORIES = 5
#: Earlier items clustered with the edition's, so that a story carried over from yesterday
#: keeps its identity ("developing: +5 outlets since yesterday"): the clustering window.
HISTORY = WINDOW - EDITION_SPAN


def lead_first(items: Sequence[Item]) -> tuple[Item, ...]:
    """The story's items with its lead report first: the highest-weight outlet that was first."""
    return tuple(sorted(items, key=lambda item: (-item.weight, item.published, item.source_name)))


#: A story a company, exchange or regulator published itself counts this much more.
PRIMARY_BOOST = 1.25


def breadth(items: Sequence[Item]) -> int:
    """Distinct outlets, with copies of one wire article (same headline) counted once."""
    reports: dict[str, str] = {}
    for item in items:
        reports.setdefault(item.source_name, _normalised(item.title))
    return len(set(reports.values()))


def _normalised(title: str) -> str:
    return " ".join(re.findall(r"[a-z0-9$%]+", title.lower()))


def score_story(items: Sequence[Item], now: dt.datetime) -> float:
    """Breadth × best source weight × recency of the latest report, boosted for primary
    sources."""
    weight = max(item.weight for item in items)
    latest = max(item.published for item in items)
    age_hours = max(0.0, (now - latest).total_seconds() / 3600)
    decay: float = 0.5 ** (age_hours / RECENCY_HALF_LIFE_HOURS)
    boost = PRIMARY_BOOST if any(item.primary for item in items) else 1.0
    return breadth(items) * weight * decay * boost


#: Words that make a story with no company or coin in it a Markets story: macro, rates,
#: currencies and commodities.
_MACRO = re.compile(
    r"\b(fed|federal reserve|ecb|central bank|rates?|yields?|treasur(?:y|ies)|bonds?|"
    r"inflation|cpi|gdp|jobs|jobless|payrolls|unemployment|dollar|yen|euro|sterling|rupee|"
    r"oil|brent|crude|opec\+?|gold|silver|copper|wheat|commodit(?:y|ies)|stocks|indexes|"
    r"s&p 500|nasdaq composite|dow|nikkei|stoxx)\b",
    re.IGNORECASE,
)


def story_tickers(items: Sequence[Item]) -> tuple[str, ...]:
    """Symbols the story is about, the most mentioned first.

    A symbol counts when the lead report names it or at least half the reports do: one outlet
    adding "bitcoin dips" to a Fed story does not make it a crypto story.
    """
    counts: Counter[str] = Counter()
    for item in items:
        counts.update(dict.fromkeys(find_tickers(f"{item.title} {item.summary_text}"), 1))
    lead = set(find_tickers(f"{items[0].title} {items[0].summary_text}")) if items else set()
    return tuple(
        symbol
        for symbol, count in counts.most_common()
        if symbol in lead or count * 2 >= len(items)
    )


def story_section(items: Sequence[Item], lead: Item, tickers: Sequence[str]) -> Section:
    """Crypto when it names coins only, Stocks when it names stocks only, Markets for macro,
    rates and commodities; otherwise the section most of its outlets file under."""
    table = symbol_table()
    kinds = {table.kind(symbol) for symbol in tickers} - {None}
    if kinds == {"coin"}:
        return Section.CRYPTO
    if kinds == {"stock"}:
        return Section.STOCKS
    if not kinds and _MACRO.search(lead.title):
        return Section.MARKETS
    votes = Counter(item.section for item in items)
    best = max(votes.values())
    return lead.section if votes[lead.section] == best else votes.most_common(1)[0][0]


def make_stories(
    items: Sequence[Item],
    now: dt.datetime,
    *,
    since: dt.datetime | None = None,
    method: Method = Method.EMBEDDING,
    vectors: npt.NDArray[np.float32] | None = None,
) -> list[Story]:
    """Cluster ``items`` and return the stories, best first.

    With ``since``, items before it only give stories their history: a story needs a report
    from ``since`` on to be told, and its earlier outlets mark it as developing. ``vectors``
    are the items' title embeddings when the caller has them (the store caches them).
    """
    stories = []
    for group in cluster_items(items, method, vectors):
        earlier = [item for item in group if since is not None and item.published < since]
        if len(earlier) == len(group):
            continue  # nothing new: told in an earlier edition
        ordered = lead_first(group)
        tickers = story_tickers(ordered)
        stories.append(
            Story(
                items=ordered,
                section=story_section(ordered, ordered[0], tickers),
                score=score_story(group, now),
                tickers=tickers,
                earlier_outlets=tuple(dict.fromkeys(item.source_name for item in earlier)),
            )
        )
    stories.sort(key=lambda story: (-story.score, story.lead.title))
    return stories


def build_digest(
    items: Sequence[Item],
    *,
    date: dt.date,
    title: str,
    tagline: str,
    window: tuple[dt.datetime, dt.datetime],
    max_stories: int,
    clustering: Method = Method.EMBEDDING,
    vectors: npt.NDArray[np.float32] | None = None,
) -> Digest:
    """The edition of ``date``: the stories with reports inside ``window``, clustered with
    the reports of the HISTORY before it."""
    start, end = window
    kept = [index for index, item in enumerate(items) if start - HISTORY <= item.published < end]
    recent = [items[index] for index in kept]
    chosen = vectors[kept] if vectors is not None else None
    stories = make_stories(recent, now=end, since=start, method=clustering, vectors=chosen)
    stories = stories[:max_stories]
    top = tuple(stories[:TOP_STORIES])
    rest = stories[TOP_STORIES:]
    sections = tuple(
        (section, tuple(story for story in rest if story.section is section)) for section in Section
    )
    return Digest(
        date=date,
        title=title,
        tagline=tagline,
        window_start=start,
        window_end=end,
        top=top,
        sections=tuple((section, stories) for section, stories in sections if stories),
    )
