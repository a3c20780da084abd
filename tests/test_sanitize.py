from __future__ import annotations

import re

from bs4 import BeautifulSoup
from hypothesis import example, given
from hypothesis import strategies as st

from digest.parse import SUMMARY_LIMIT, summary_of
from digest.sanitize import (
    _CANONICAL_LINK,
    _HTML_CLEANER,
    _NOT_CHARACTERS,
    _NOT_IN_A_LINE,
    _PLAIN_LINK,
    LINK_LIMIT,
    _canonical_by_parts,
    _html_characters,
    _safe_link_by_parts,
    _tighten,
    canonical_link,
    clean_html,
    clean_text,
    safe_line,
    safe_link,
    safe_spaced_line,
    summarize,
    text_of_clean_html,
    valid_text,
)

from .checks import ANY_CHARACTER, assert_safe_line

HOSTILE = """
<p onclick="steal()">Shares <b>rose</b> <script>alert(1)</script><style>p{}</style>
<a href="javascript:alert(1)">bad</a> <a href="https://ok.example.com/a">good</a>
<iframe src="https://evil.example.com"></iframe><img src="https://t.example.com/pixel.gif"
width="1" height="1"><svg><a xlink:href="javascript:alert(2)">x</a></svg>
<form action="https://evil.example.com"><input name="q"></form></p>
"""


def test_clean_html_keeps_text_and_safe_links_only() -> None:
    soup = BeautifulSoup(clean_html(HOSTILE), "html.parser")
    forbidden = {"script", "style", "iframe", "img", "svg", "form", "input", "object", "embed"}
    assert not {tag.name for tag in soup.find_all(True)} & forbidden
    for tag in soup.find_all(True):
        assert not any(name.startswith("on") for name in tag.attrs)
    assert [a.get("href") for a in soup.find_all("a") if a.get("href")] == [
        "https://ok.example.com/a"
    ]
    assert "alert" not in soup.get_text()
    assert "Shares rose" in " ".join(soup.get_text().split())


def test_clean_text_is_plain() -> None:
    assert clean_text("<b>Fed</b> &amp; rates <script>x()</script>\n\n cut") == "Fed & rates cut"
    assert clean_text("  plain   title ") == "plain title"


def test_canonical_link_drops_tracking_and_fragment() -> None:
    link = "HTTPS://News.Example.COM:443/a/b?id=7&utm_source=rss&fbclid=x&gclid=y&mc_cid=1#top"
    assert canonical_link(link) == "https://news.example.com/a/b?id=7"


def test_safe_link_refuses_other_schemes() -> None:
    assert safe_link("https://a.example.com/x") == "https://a.example.com/x"
    assert safe_link("javascript:alert(1)") is None
    assert safe_link("file:///etc/passwd") is None
    assert safe_link("/relative") is None


def test_summarize_keeps_whole_sentences() -> None:
    text = "First sentence here. Second one follows. " + "Third is long. " * 30
    assert summarize(text, limit=60) == "First sentence here. Second one follows."
    assert summarize("short") == "short"


def test_clean_text_keeps_punctuation_next_to_link_text() -> None:
    assert clean_text('<p>Read more at <a href="https://x.example.com">X</a>.</p>') == (
        "Read more at X."
    )


def test_relative_and_odd_links_lose_their_href() -> None:
    soup = BeautifulSoup(
        clean_html('<a href="&">a</a><a href="/x">b</a><a href=" JAVASCRIPT:x">c</a>'),
        "html.parser",
    )
    assert [a.get("href") for a in soup.find_all("a")] == [None, None, None]
    assert soup.get_text() == "abc"


def test_safe_line_turns_every_line_break_and_space_into_one_space() -> None:
    for separator in "\n\r\t\x0b\x0c\x1c\x1d\x1e\x1f\x85\u2028\u2029\xa0\u2003\u3000":
        assert safe_line(f" a{separator}{separator}b{separator}") == "a b", repr(separator)


def test_safe_line_removes_controls_surrogates_noncharacters_and_bidi_controls() -> None:
    removed = (
        "\x00\x07\x1b\x7f\x80\x9b\x9f"  # C0, DEL, C1
        "\ud800\udfff"  # lone surrogates
        "\ufdd0\ufdef\ufffe\uffff\U0001fffe\U0010ffff"  # noncharacters
        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"  # bidi
    )
    assert safe_line(f"Fed{removed}cuts") == "Fedcuts"


def test_safe_line_keeps_every_script_emoji_and_joiner() -> None:
    text = (
        "Übernahme 日本株 עברית العربية e\u0301 👩\u200d👩\u200d👧 🏴\U000e0067\U000e0062\U000e007f"
    )
    assert safe_line(text) == text


def test_overlong_text_is_cut_after_a_word_with_an_ellipsis() -> None:
    assert safe_line("alpha beta gamma delta", 12) == "alpha beta…"
    assert safe_line("alpha beta, gamma delta", 13) == "alpha beta…"
    assert safe_line("alpha beta gamma", 16) == "alpha beta gamma"
    # One endless word is cut where it reaches the limit.
    assert safe_line("x" * 50, 10) == "x" * 9 + "…"


@given(st.text(ANY_CHARACTER), st.integers(min_value=1, max_value=400))
def test_safe_line_gives_one_safe_line_within_the_limit_for_any_text(text: str, limit: int) -> None:
    line = safe_line(text, limit)
    assert_safe_line(line)
    assert len(line) <= limit
    assert safe_line(line, limit) == line


def test_clean_html_drops_surrogates_and_noncharacters_even_from_references() -> None:
    html = "<p>a\ud800b&#xFFFE;c&#x1;d\ufdd0e\x85f</p>"
    assert clean_html(html) == "<p>abcde f</p>"


def test_clean_text_makes_a_safe_line_of_what_entities_decode_to() -> None:
    title = "Fed&#x2028;cuts &#x202E;rates&#xFFFE; <b>again</b>\ud800"
    assert clean_text(title, limit=100) == "Fed cuts rates again"


def test_links_that_do_not_parse_or_run_too_long_are_no_links() -> None:
    for link in [
        "http://[",
        "http://a:b/",
        "http://a:99999/",
        "https://a.example.com/" + "x" * 3000,
    ]:
        assert safe_link(link) is None, link
        assert canonical_link(link) == link  # no exception either
    assert safe_link("http://a:b/", base="http://[") is None


def test_links_are_made_printable() -> None:
    assert safe_link(" https://a.example.com/a b\n\tc ") == "https://a.example.com/a%20bc"
    assert (
        safe_link("https://a.example.com/\u202e\ud800x\ufffe") == "https://a.example.com/%E2%80%AEx"
    )
    assert safe_link("/x", base="https://a.example.com/feed") == "https://a.example.com/x"
    assert safe_link("https://a.example.com/Ärger") == "https://a.example.com/Ärger"


@given(st.text(ANY_CHARACTER))
def test_the_quick_character_check_removes_what_the_exact_one_does(text: str) -> None:
    assert safe_line(text) == " ".join(_NOT_IN_A_LINE.sub("", text).split())
    assert valid_text(text) == _NOT_CHARACTERS.sub("", text)


# The quick paths below give what the general ones would: checked against them.


@given(st.from_regex(_PLAIN_LINK, fullmatch=True))
def test_a_plain_link_is_its_own_safe_link(link: str) -> None:
    if len(link) <= LINK_LIMIT:
        assert _safe_link_by_parts(link, None) == link


_TRACKING = st.sampled_from(["utm_source=rss", "fbclid=1", "UTM_medium=x", "p=1", "a=", "_hsenc=2"])


@given(
    st.from_regex(_CANONICAL_LINK, fullmatch=True),
    st.lists(_TRACKING, max_size=3).map("&".join),
)
def test_the_quick_canonical_link_is_the_one_by_parts(link: str, pairs: str) -> None:
    assert canonical_link(link) == _canonical_by_parts(link)
    if pairs:
        joined = f"{link}{'&' if '?' in link else '?'}{pairs}"
        assert canonical_link(joined) == _canonical_by_parts(joined)


_WORDS = st.lists(
    st.sampled_from(["a", "bc", ".", ",", ";", ":", "!", "?", ")", "(", "é", "“"]), max_size=30
)


@given(_WORDS)
def test_tightening_drops_the_space_before_punctuation_as_the_regex_does(words: list[str]) -> None:
    line = " ".join(words)
    assert _tighten(line) == re.sub(r"\s+([.,;:!?)])", r"\1", line)


_HTML_PIECES = st.one_of(
    st.text(ANY_CHARACTER, max_size=8),
    st.sampled_from(
        [
            "<p>",
            "</p>",
            "<b>",
            "&amp;",
            "&lrm;",
            "&NewLine;",
            "&Tab;",
            "&nbsp;",
            "&copy",
            "&",
            "<a href='https://a.example.com/'>",
            "</a>",
            "<script>",
            "\r\n",
            "\x0b",
            "\x85",
        ]
    ),
)


@given(st.lists(_HTML_PIECES, max_size=40).map("".join))
def test_without_numeric_references_the_sanitizer_adds_no_character_to_drop(html: str) -> None:
    if "&#" not in html:
        cleaned = _HTML_CLEANER.clean(_html_characters(html))
        assert _html_characters(cleaned) == cleaned


_SENTENCES = st.lists(
    st.one_of(
        st.sampled_from(["Shares rose.", "Bitcoin fell!", "Why?", "a", "<p>", "</p>", "<br>"]),
        st.sampled_from(["<b>", "</b>", " (", ") ", "&amp;", " ", "\n", "x" * 300, "word " * 40]),
        st.text(ANY_CHARACTER, max_size=5),
    ),
    max_size=200,
)


@given(_SENTENCES.map("".join))
@example("<p>" + "Shares <b>rose</b> (again) . " * 300 + "</p>")
@example("<p>" + "x" * 5000 + "</p> <p>Fed.</p>")
def test_the_summary_read_from_the_start_is_the_summary_of_the_whole(html: str) -> None:
    clean = clean_html(html)
    assert summary_of(clean) == summarize(safe_line(text_of_clean_html(clean)), SUMMARY_LIMIT)


@given(st.text(ANY_CHARACTER))
def test_a_spaced_line_is_made_safe_as_any_line(text: str) -> None:
    spaced = " ".join(text.split())
    assert safe_spaced_line(spaced) == safe_line(spaced)
