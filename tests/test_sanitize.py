from __future__ import annotations

from bs4 import BeautifulSoup

from digest.sanitize import canonical_link, clean_html, clean_text, safe_link, summarize

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
