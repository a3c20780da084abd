from __future__ import annotations

import datetime as dt

from bs4 import BeautifulSoup

from digest.models import Method
from digest.rank import build_digest
from digest.render import HTML_LIMIT, make_subject, outlets_label, render_digest
from digest.site import Links

from .factories import BASE, make_item

LINKS = Links(
    site_url="https://digest.example.com",
    unsubscribe="https://digest.example.com/unsubscribe?email=a%40example.com&token=t",
    view_in_browser="https://digest.example.com/archive/2026-11-24",
)


def make_digest(items: list, max_stories: int = 1000) -> object:  # type: ignore[type-arg]
    return build_digest(
        items,
        date=dt.date(2026, 11, 24),
        title="Market Digest",
        tagline="Daily stocks & crypto headlines, free to your inbox",
        window=(BASE - dt.timedelta(hours=24), BASE + dt.timedelta(hours=1)),
        max_stories=max_stories,
        # The made-up stories below differ in spelling only: the light method tells them
        # apart by their words, where a model of meaning rightly finds them all alike.
        clustering=Method.LIGHT,
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
    assert "covered by 3 outlets" in " ".join(soup.get_text(" ").split())
    assert "The Fed left rates unchanged." in rendered.text
    assert "1. Fed holds rates steady" in rendered.text
    assert items[1].link in rendered.text and items[2].link in rendered.text
    assert LINKS.unsubscribe in rendered.text
    assert soup.find("a", string="Unsubscribe")["href"] == LINKS.unsubscribe  # type: ignore[index]
    assert "not investment or trading advice" in rendered.text


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


def test_outlets_label_counts_outlets() -> None:
    digest = make_digest([make_item("Only story", "Wire")])
    assert outlets_label(digest.top[0]) == "Wire"  # type: ignore[attr-defined]


def _word(number: int, part: int) -> str:
    """A made-up word, different for every (number, part), spelled from the number's digits."""
    letters = "bcdfghjklmnpqrstvwxz"
    digits = f"{number:04d}{part}"
    return (
        "".join(letters[(int(digit) * 2 + position) % 20] for position, digit in enumerate(digits))
        + "o"
    )


def many_stories(count: int) -> list:  # type: ignore[type-arg]
    """``count`` unrelated stories with summaries as long as the parser keeps (280 chars)."""
    return [
        make_item(
            # Words of its own in every story, so that none of them cluster together.
            " ".join(_word(n, part) for part in range(4)),
            f"Outlet{n % 9}",
            summary=(f"Product{n} unit{n} region{n} officer{n} guidance{n}. " * 8)[:279],
            hours_ago=n / 20,
        )
        for n in range(count)
    ]


def test_forty_stories_stay_under_gmail_clipping_whole() -> None:
    digest = make_digest(many_stories(40))
    assert digest.story_count == 40  # type: ignore[attr-defined]
    rendered = render_digest(digest, LINKS, postal_address="1 Example St")  # type: ignore[arg-type]
    assert len(rendered.html.encode()) <= HTML_LIMIT < 102 * 1024
    assert rendered.stories == 40
    assert "web edition" not in BeautifulSoup(rendered.html, "html.parser").get_text()


def test_a_huge_edition_shortens_summaries_before_dropping_stories() -> None:
    digest = make_digest(many_stories(300))
    assert digest.story_count == 300  # type: ignore[attr-defined]
    rendered = render_digest(digest, LINKS, postal_address="x")  # type: ignore[arg-type]
    assert len(rendered.html.encode()) <= HTML_LIMIT
    soup = BeautifulSoup(rendered.html, "html.parser")
    assert "web edition" in soup.get_text()
    shown = soup.find_all("a", class_="headline")
    assert len(shown) == rendered.stories < 300
    # Stories went only once no summary was left to shorten.
    assert soup.find("p", class_="summary") is None
    assert "web edition" in rendered.text


def test_styles_are_inlined_and_the_footer_has_what_the_law_asks() -> None:
    links = Links(
        LINKS.site_url,
        LINKS.unsubscribe,
        LINKS.view_in_browser,
        preferences="https://digest.example.com/preferences?email=a&token=t",
    )
    rendered = render_digest(
        make_digest(many_stories(3)), links, postal_address="1 Example St, Springfield"
    )  # type: ignore[arg-type]
    soup = BeautifulSoup(rendered.html, "html.parser")
    headline = soup.find("a", class_="headline")
    assert headline is not None and "font-size" in str(headline.get("style"))
    footer = " ".join(soup.get_text(" ").split())
    assert "1 Example St, Springfield" in footer
    assert "not investment or trading advice" in soup.get_text()
    hrefs = {a.get_text(): a.get("href") for a in soup.find_all("a")}
    assert hrefs["Unsubscribe"] == links.unsubscribe
    assert hrefs["Manage preferences"] == links.preferences
    assert hrefs["View in browser"] == links.view_in_browser
    preheader = soup.find("div", class_="preheader")
    assert preheader is not None and preheader.get_text().startswith("3 stories today")
    assert "max-width:600px" in str(soup.find("table", class_="sheet").get("style")).replace(
        " ", ""
    )  # type: ignore[union-attr]
    assert "1 Example St, Springfield" in rendered.text


def test_a_developing_story_says_what_is_new_since_yesterday() -> None:
    items = [
        make_item("Kovex exchange hack drains $230 million", "Wire", hours_ago=30),
        make_item("Kovex exchange hack: withdrawals stay frozen", "Street", hours_ago=5),
        make_item("Kovex exchange hack victims get refund plan", "Chain", hours_ago=4),
    ]
    rendered = render_digest(make_digest(items), LINKS, postal_address="1 Example St")  # type: ignore[arg-type]
    assert "developing: +2 outlets since yesterday" in rendered.text
    page = BeautifulSoup(rendered.html, "html.parser")
    developing = page.find("span", class_="developing")
    assert developing is not None
    assert developing.get_text() == "developing: +2 outlets since yesterday"
