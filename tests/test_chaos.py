"""The morning edition against everything at once: hostile feeds, feeds that are down, odd
and refused addresses. The good feeds' stories reach every good address exactly once, the
rest is reported, and the exit status says "partial"."""

from __future__ import annotations

import datetime as dt
import json
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path

from digest.config import load_settings
from digest.pipeline import open_store

from .conftest import SAMPLE_DATE, FeedServer, Inbox, Route, digest_command, write_config

PUBLISHED = "Tue, 24 Nov 2026 05:00:00 GMT"
GOOD_STORIES = [
    ("Tech", ["Apple opens chip plant in Texas", "Oracle wins cloud contract"]),
    ("Banks", ["JPMorgan lifts dividend after stress test", "Wells Fargo settles fee probe"]),
    ("Coins", ["Bitcoin miners expand in Norway", "Solana validators upgrade network"]),
    ("Energy", ["Exxon books record refining margin", "Chevron trims Permian spending"]),
    ("Retail", ["Walmart beats holiday sales forecast", "Target cuts grocery prices"]),
    ("Autos", ["Ford recalls pickups over brake fault", "Boeing delays freighter jet"]),
]


def rss(titles: list[str], slug: str) -> bytes:
    items = "".join(
        f"<item><title>{title}</title><link>https://{slug}.example.com/{n}</link>"
        f"<description>{title}.</description><pubDate>{PUBLISHED}</pubDate></item>"
        for n, title in enumerate(titles)
    )
    channel = f"<channel><title>{slug}</title>{items}</channel>"
    return f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0">{channel}</rss>'.encode()


def hostile_feeds() -> dict[str, Route]:
    surrogate = json.dumps(
        {
            "version": "https://jsonfeed.org/version/1.1",
            "title": "Lone",
            "items": [
                {
                    "id": "1",
                    "url": "https://lone.example.com/1",
                    "title": "Tether \\ud800 mints more coins",
                    "date_published": "2026-11-24T05:00:00Z",
                }
            ],
        }
    ).replace("\\\\ud800", "\\ud800")
    return {
        "/lone.json": Route(surrogate.encode(), headers={"Content-Type": "application/feed+json"}),
        "/separator.xml": Route(
            rss(["=?utf-8?q?=E2=80=A8?= Markets\u2028brace for\u202e jobs data\u0085"], "sep")
        ),
        "/long.xml": Route(rss(["Nasdaq " + "record " * 13_000], "long")),
        "/markup.xml": Route(
            rss(
                ["Oil [/b] jumps \u0080\u009f on <![CDATA[<script>alert(1)</script>]]> supply"],
                "mk",
            )
        ),
    }


def test_the_morning_edition_survives_hostile_feeds_and_addresses(
    tmp_path: Path, feed_server: FeedServer, inbox: Inbox
) -> None:
    feeds = []
    for name, titles in GOOD_STORIES:
        feed_server.routes[f"/{name}.xml"] = Route(rss(titles, name.lower()))
        feeds.append({"name": name, "url": feed_server.url(f"/{name}.xml"), "section": "stocks"})
    for path, route in hostile_feeds().items():
        feed_server.routes[path] = route
        feeds.append({"name": path.strip("/"), "url": feed_server.url(path), "section": "stocks"})
    feed_server.routes["/down.xml"] = Route(b"busy", status=500)
    feeds.append({"name": "Down", "url": feed_server.url("/down.xml"), "section": "stocks"})
    feeds.append({"name": "Closed", "url": "http://127.0.0.1:9/feed.xml", "section": "stocks"})
    config = write_config(tmp_path, feeds)

    good = [f"reader{n}@example.com" for n in range(45)]
    people = tmp_path / "people.csv"
    rows = [*good, "ann@bücher.de", "用户@例子.广告", "READER1@EXAMPLE.COM", "bounce@example.com"]
    people.write_text("email\n" + "\n".join(rows) + "\n", encoding="utf-8")
    imported = digest_command("subscribers", "import", "--confirmed", str(people), config=config)
    assert imported.returncode == 0, imported.stderr
    left = digest_command("subscribers", "add", "--confirmed", "gone@example.com", config=config)
    assert left.returncode == 0
    store = open_store(load_settings(config, env={}))
    try:
        store.unsubscribe("gone@example.com", dt.datetime.now(dt.UTC))
        assert store.subscriber("reader1@example.com") is not None
        assert len(store.subscribers()) == 49  # READER1 is reader1
    finally:
        store.close()
    again = digest_command("subscribers", "import", "--confirmed", str(people), config=config)
    assert again.returncode == 0 and "Imported 0 new subscribers" in again.stdout
    assert (
        digest_command(
            "subscribers", "add", "--confirmed", "gone@example.com", config=config
        ).returncode
        == 0
    )

    inbox.refuse.add("bounce@example.com")
    result = digest_command(
        "run", "--date", SAMPLE_DATE.isoformat(), config=config, env={"DIGEST_SMTP_URL": inbox.url}
    )
    assert result.returncode == 3, result.stdout + result.stderr  # partial
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("Error: partial: 2 of 12 feeds failed; 1 of 48 messages")
    assert "Fetched 10/12 feeds" in result.stdout
    assert f"failed Down ({feed_server.url('/down.xml')}): HTTP 500" in result.stdout
    assert "failed Closed (http://127.0.0.1:9/feed.xml)" in result.stdout
    assert "not sent bounce@example.com" in result.stdout

    delivered: dict[str, int] = {}
    for _, recipients, raw in inbox.messages:
        for recipient in recipients:
            delivered[recipient] = delivered.get(recipient, 0) + 1
        message = message_from_bytes(raw, policy=default_policy)
        assert "\n" not in str(message["Subject"]) and "\u2028" not in str(message["Subject"])
        assert message["List-Unsubscribe"] is not None
        text = message.get_body(("plain",)).get_content()
        for _, titles in GOOD_STORIES:
            for title in titles:
                assert title in " ".join(text.split()), (recipients, title)
    expected = {*good, "ann@xn--bcher-kva.de", "用户@xn--fsqu00a.xn--4rr70v"}
    assert delivered == dict.fromkeys(expected, 1)  # once each; nobody unsubscribed, no bounce
