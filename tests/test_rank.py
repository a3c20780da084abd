from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

from digest.models import Method, Section
from digest.rank import (
    PRIMARY_BOOST,
    breadth,
    build_digest,
    lead_first,
    score_story,
)
from digest.window import edition_window

from .factories import BASE, make_item


def test_window_is_the_24_hours_before_the_send_time() -> None:
    start, end = edition_window(dt.date(2026, 11, 24), dt.time(7, 0), ZoneInfo("America/New_York"))
    assert end == dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    assert end - start == dt.timedelta(hours=24)


def test_window_follows_daylight_saving_time() -> None:
    _, end = edition_window(dt.date(2026, 7, 1), dt.time(7, 0), ZoneInfo("America/New_York"))
    assert end == dt.datetime(2026, 7, 1, 11, 0, tzinfo=dt.UTC)


def test_more_outlets_heavier_sources_and_fresher_news_score_higher() -> None:
    one = [make_item("A", "W1")]
    two = [make_item("A", "W1"), make_item("A, reported", "W2")]
    assert score_story(two, BASE) > score_story(one, BASE)
    heavy = [make_item("A", "W1", weight=1.5)]
    assert score_story(heavy, BASE) > score_story(one, BASE)
    old = [make_item("A", "W1", hours_ago=20)]
    assert score_story(one, BASE) > score_story(old, BASE)


def test_same_outlet_twice_counts_once() -> None:
    twice = [make_item("A", "W1"), make_item("A again", "W1")]
    assert score_story(twice, BASE) == score_story([make_item("A", "W1")], BASE)


def test_lead_is_the_heaviest_outlet_that_reported_first() -> None:
    items = [
        make_item("Early small", "Blog", hours_ago=5, weight=0.8),
        make_item("Late wire", "Wire", hours_ago=1, weight=1.3),
        make_item("Early wire", "Wire2", hours_ago=3, weight=1.3),
    ]
    assert lead_first(items)[0].title == "Early wire"


def test_digest_puts_top_stories_first_then_sections_and_respects_window() -> None:
    items = [
        make_item(f"{topic.capitalize()} {word}", f"Outlet{n}", section=section)
        for n, (word, topic, section) in enumerate(
            [
                ("one", "apples", Section.STOCKS),
                ("two", "bananas", Section.STOCKS),
                ("three", "cherries", Section.CRYPTO),
                ("four", "dates", Section.CRYPTO),
                ("five", "elderberries", Section.STOCKS),
                ("six", "figs", Section.CRYPTO),
                ("seven", "grapes", Section.STOCKS),
            ]
        )
    ]
    outside = make_item("Too old to include", "Old", hours_ago=30)
    digest = build_digest(
        [*items, outside],
        date=dt.date(2026, 11, 24),
        title="T",
        tagline="t",
        window=(BASE - dt.timedelta(hours=24), BASE),
        max_stories=6,
        # Seven unrelated made-up headlines about fruit: the words tell them apart, which is
        # all this test needs; a model of meaning rightly finds them one topic.
        clustering=Method.LIGHT,
    )
    assert len(digest.top) == 5
    assert digest.story_count == 6
    titles = [s.lead.title for s in digest.top] + [
        s.lead.title for _, stories in digest.sections for s in stories
    ]
    assert "Too old to include" not in titles
    for section, stories in digest.sections:
        assert all(story.section is section for story in stories)


def test_wire_copies_of_one_article_count_once() -> None:
    copies = [
        make_item("Fed holds rates steady", "Paper A"),
        make_item("Fed holds rates steady", "Paper B"),
        make_item("FED HOLDS RATES STEADY", "Paper C"),
    ]
    reporting = [make_item("Fed holds rates steady", "Paper A"), make_item("Fed pauses", "Paper B")]
    assert breadth(copies) == 1
    assert breadth(reporting) == 2
    assert score_story(reporting, BASE) > score_story(copies, BASE)


def test_primary_sources_are_boosted() -> None:
    plain = [make_item("Commission charges adviser", "Wire")]
    primary = [replace(make_item("Commission charges adviser", "Wire"), primary=True)]
    assert score_story(primary, BASE) == score_story(plain, BASE) * PRIMARY_BOOST


def test_a_story_carried_over_from_yesterday_is_developing() -> None:
    window = (BASE - dt.timedelta(hours=24), BASE)
    yesterday = [
        make_item("Kovex exchange hack drains $230 million", "Wire", hours_ago=30),
        make_item("Kovex exchange hack: $230 million stolen", "Street", hours_ago=28),
        make_item("Copper miners merge in all-share deal", "Wire", hours_ago=29),
    ]
    today = [
        make_item("Kovex exchange hack: withdrawals stay frozen", "Street", hours_ago=5),
        make_item("Kovex exchange hack victims get refund plan", "Chain", hours_ago=4),
        make_item("Kovex exchange hack traced to phished key", "Block", hours_ago=3),
        make_item("Dollar steadies ahead of Fed minutes", "Wire", hours_ago=2),
    ]
    digest = build_digest(
        [*yesterday, *today], date=BASE.date(), title="T", tagline="t", window=window,
        max_stories=10,
    )  # fmt: skip
    stories = [*digest.top, *(story for _, section in digest.sections for story in section)]
    leads = sorted(story.lead.title for story in stories)
    # Yesterday's copper story had nothing new: it is not told again.
    assert not any("Copper" in lead for lead in leads)
    (hack,) = [story for story in stories if "Kovex" in story.lead.title]
    assert set(hack.earlier_outlets) == {"Wire", "Street"}
    assert hack.new_outlets == 2  # Chain and Block; Street had reported before
    (dollar,) = [story for story in stories if "Dollar" in story.lead.title]
    assert dollar.earlier_outlets == () and dollar.new_outlets == 1
