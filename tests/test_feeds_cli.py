"""`digest feeds`: health table, add, remove, check, OPML import and export."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from .conftest import FeedServer, Route, invoke_cli, write_config

RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Bitcoin tops $100,000</title><link>https://a.example.com/1</link>
<pubDate>Mon, 23 Nov 2026 14:05:00 +0000</pubDate></item></channel></rss>"""
CONFIGURED = "https://wire.example.com/rss"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    feed = {"name": "Wire", "url": CONFIGURED, "section": "stocks"}
    return write_config(tmp_path, [feed])


invoke = invoke_cli


def test_add_list_export_and_remove(config: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/coins"] = Route(RSS)
    coins = feed_server.url("/coins")
    code, out = invoke(config, "feeds", "add", coins, "--section", "crypto", "--name", "Coins")
    assert code == 0 and "Added Coins" in out
    code, out = invoke(config, "feeds")
    assert code == 0 and "Coins" in out and "Wire" in out
    code, out = invoke(config, "feeds", "export")
    outlines = etree.fromstring(out.encode()).findall(".//outline")
    assert {(o.get("xmlUrl"), o.get("category")) for o in outlines} == {
        (CONFIGURED, "stocks"),
        (coins, "crypto"),
    }
    code, out = invoke(config, "feeds", "remove", coins)
    assert code == 0
    code, out = invoke(config, "feeds", "export")
    assert coins not in out


@pytest.mark.parametrize(
    ("route", "reason"),
    [
        (
            Route(
                b"<!DOCTYPE html><html><body><h1>Markets</h1></body></html>",
                headers={"Content-Type": "text/html"},
            ),
            "not added: no entries found: not a feed, or an empty one",
        ),
        (Route(b"missing", status=404), "not added: HTTP 404"),
    ],
)
def test_add_refuses_what_is_not_a_feed(
    config: Path, feed_server: FeedServer, route: Route, reason: str
) -> None:
    feed_server.routes["/page"] = route
    url = feed_server.url("/page")
    code, out = invoke(config, "feeds", "add", url, "--section", "stocks")
    assert code == 1 and f"Error: {url}: {reason}" in out
    assert url not in invoke(config, "feeds", "export")[1]


def test_add_refuses_a_loopback_feed_like_check_does(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed = {"name": "Wire", "url": CONFIGURED, "section": "stocks"}
    config = write_config(tmp_path, [feed])
    config.write_text(
        config.read_text().replace("allow_private_hosts: true", "allow_private_hosts: false")
    )
    feed_server.routes["/coins"] = Route(RSS)
    url = feed_server.url("/coins")
    checked = invoke(config, "feeds", "check", url)
    added = invoke(config, "feeds", "add", url, "--section", "crypto")
    assert checked[0] == added[0] == 1
    assert "127.0.0.1" in added[1] and "not added" in added[1]
    assert url not in invoke(config, "feeds", "export")[1]


def test_configured_feed_is_removed_in_the_config_only(config: Path) -> None:
    code, out = invoke(config, "feeds", "remove", CONFIGURED)
    assert code == 1 and f"Error: {CONFIGURED}: listed in {config}: remove it there" in out
    code, out = invoke(config, "feeds", "remove", "https://nobody.example.com/rss")
    assert code == 1 and "not a feed" in out


def test_add_refuses_other_schemes(config: Path) -> None:
    code, out = invoke(config, "feeds", "add", "file:///etc/passwd", "--section", "stocks")
    assert code == 1 and "file:///etc/passwd: expected an http(s) URL" in out


def test_opml_import_places_feeds_by_category_or_folder(config: Path, tmp_path: Path) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        """<?xml version="1.0"?><opml version="2.0"><head><title>x</title></head><body>
        <outline text="Crypto">
          <outline text="Coins" xmlUrl="https://coins.example.com/rss"/>
        </outline>
        <outline text="Desk" xmlUrl="https://desk.example.com/rss" category="stocks"/>
        </body></opml>""",
        encoding="utf-8",
    )
    code, out = invoke(config, "feeds", "import", str(opml))
    assert code == 0 and "Imported 2 new feeds of 2." in out
    code, out = invoke(config, "feeds", "export")
    outlines = etree.fromstring(out.encode()).findall(".//outline")
    placed = {o.get("xmlUrl"): o.get("category") for o in outlines}
    assert placed["https://coins.example.com/rss"] == "crypto"
    assert placed["https://desk.example.com/rss"] == "stocks"


def test_opml_without_sections_needs_one(config: Path, tmp_path: Path) -> None:
    opml = tmp_path / "feeds.opml"
    opml.write_text(
        '<opml version="2.0"><body><outline text="X" xmlUrl="https://x.example.com/rss"/>'
        "</body></opml>",
        encoding="utf-8",
    )
    code, out = invoke(config, "feeds", "import", str(opml))
    assert code == 1 and "no section for https://x.example.com/rss" in out
    code, out = invoke(config, "feeds", "import", str(opml), "--section", "crypto")
    assert code == 0 and "Imported 1 new feed of 1." in out


def test_opml_with_external_entities_is_not_expanded(config: Path, tmp_path: Path) -> None:
    opml = tmp_path / "evil.opml"
    opml.write_text(
        '<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        '<opml version="2.0"><body><outline text="&x;" category="stocks" '
        'xmlUrl="https://x.example.com/rss"/></body></opml>',
        encoding="utf-8",
    )
    code, out = invoke(config, "feeds", "import", str(opml))
    assert code == 1 and f"Error: {opml}: line 1: not valid OPML" in out, out
    assert "root:" not in out
    code, out = invoke(config, "feeds", "export")
    assert code == 0 and "root:" not in out
    assert "x.example.com" not in out


def test_broken_opml_names_the_line(config: Path, tmp_path: Path) -> None:
    opml = tmp_path / "broken.opml"
    opml.write_text("<opml>\n<body>\n<outline</body></opml>", encoding="utf-8")
    code, out = invoke(config, "feeds", "import", str(opml))
    assert code == 1 and "line 3: not valid OPML" in out


def test_check_shows_what_a_feed_holds(config: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(RSS, headers={"Content-Type": "application/rss+xml"})
    code, out = invoke(config, "feeds", "check", feed_server.url("/feed"))
    assert code == 0, out
    assert "HTTP 200" in out and "1 items" in out and "Bitcoin tops $100,000" in out


def test_check_of_a_page_points_to_its_feeds(config: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/"] = Route(
        b'<html><head><link rel="alternate" type="application/rss+xml" href="/rss.xml">'
        b"</head><body>Hi</body></html>",
        headers={"Content-Type": "text/html"},
    )
    code, out = invoke(config, "feeds", "check", feed_server.url("/"))
    assert code == 1
    assert f"the page links to: {feed_server.url('/rss.xml')}" in out


def test_check_refuses_private_hosts_unless_allowed(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.routes["/feed"] = Route(RSS)
    strict = write_config(tmp_path, [{"name": "W", "url": CONFIGURED, "section": "stocks"}])
    text = strict.read_text(encoding="utf-8").replace("allow_private_hosts: true", "")
    strict.write_text(text, encoding="utf-8")
    code, out = invoke(strict, "feeds", "check", feed_server.url("/feed"))
    assert code == 1 and "refused: 127.0.0.1 is a loopback address" in out
