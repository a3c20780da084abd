from __future__ import annotations

import datetime as dt

from bs4 import BeautifulSoup

from digest.rank import build_digest
from digest.render import Links, make_subject, outlets_label, render_digest

from .factories import BASE, make_item

LINKS = Links(
    site_url="https://digest.example.com",
    unsubscribe="https://digest.example.com/unsubscribe?email=a%40example.com&token=t",
    view_in_browser="https://digest.example.com/archive/2026-11-24",
)


def make_digest(items: list) -> object:  # type: ignore[type-arg]
    return build_digest(
        items,
        date=dt.date(2026, 11, 24),
        title="Market Digest",
        tagline="Daily stocks & crypto headlines, free to your inbox",
        window=(BASE - dt.timedelta(hours=24), BASE + dt.timedelta(hours=1)),
        max_stories=30,
    )


def test_both_parts_show_headline_summary_outlets_and_links() -> None:
    items = [
        make_item(
            "Fed holds rates steady", "Wire", weight=1.3, summary="The Fed left rates unchanged."
        ),
        make_item("Fed keeps rates steady", "Street"),
        make_item("Fed holds rates steady again", "Capital"),
    ]
    rendered = render_digest(make_digest(items), LINKS)  # type: ignore[arg-type]
    soup = BeautifulSoup(rendered.html, "html.parser")
    headline = soup.find("a", string="Fed holds rates steady")
    assert headline is not None and headline["href"] == items[0].link
    assert "Wire +2 outlets" in soup.get_text(" ")
    assert "The Fed left rates unchanged." in rendered.text
    assert "1. Fed holds rates steady" in rendered.text
    assert items[1].link in rendered.text and items[2].link in rendered.text
    assert LINKS.unsubscribe in rendered.text
    assert soup.find("a", string="Unsubscribe")["href"] == LINKS.unsubscribe  # type: ignore[index]
    assert "Not investment advice" in rendered.text


def test_feed_text_is_escaped_in_html() -> None:
    item = make_item('<img src=x onerror="alert(1)"> Bold move', "Wire")
    rendered = render_digest(make_digest([item]), LINKS)  # type: ignore[arg-type]
    soup = BeautifulSoup(rendered.html, "html.parser")
    assert soup.find("img") is None
    assert '<img src=x onerror="alert(1)"> Bold move' in soup.get_text()


def test_empty_edition_says_so() -> None:
    rendered = render_digest(make_digest([]), LINKS)  # type: ignore[arg-type]
    assert "No stories in this edition." in rendered.text
    assert "No stories in this edition." in rendered.html


def test_subject_names_the_date_and_lead_story_within_limit() -> None:
    digest = make_digest([make_item("Bitcoin tops $100,000 " + "again " * 30, "Coin")])
    subject = make_subject(digest)  # type: ignore[arg-type]
    assert subject.startswith("Market Digest for Nov 24: Bitcoin tops $100,000")
    assert len(subject) <= 110


def test_outlets_label_counts_other_outlets() -> None:
    digest = make_digest([make_item("Only story", "Wire")])
    assert outlets_label(digest.top[0]) == "Wire"  # type: ignore[attr-defined]
