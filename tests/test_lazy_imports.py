"""Light work stays light: help, settings, fetching and sending never load numpy or scipy.

Each check runs in a fresh interpreter (this one has loaded everything already) and does the
real thing: the command's help, a fetch from a feed server on loopback, a send through the
embedded SMTP server.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from digest.config import load_settings
from digest.intake import BATCH, PARSER_PROCESS_FROM
from digest.models import Digest, Section, Story, Subscriber
from digest.store import Store

from .conftest import FeedServer, Route, write_config
from .factories import make_item

#: Loaded only to cluster headlines: an edition build, `digest cluster`.
NUMERIC = ("numpy", "scipy")
#: Nor does `--help` load the network, database or email stacks.
HEAVY_FOR_HELP = (*NUMERIC, "aiohttp", "sqlalchemy", "jinja2", "feedparser", "lxml", "bs4")

RUN_COMMAND = """
import json, sys
from digest.cli import main
try:
    main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_by(
    args: list[str], env: dict[str, str] | None = None, *, whole_names: bool = False
) -> set[str]:
    """Run ``digest ARGS`` in a new interpreter; the top-level modules it had loaded (or
    every module, by its whole name)."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_COMMAND, *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    modules = json.loads(result.stderr.strip().splitlines()[-1])
    return set(modules) if whole_names else {name.partition(".")[0] for name in modules}


def test_help_loads_nothing_heavy() -> None:
    loaded = loaded_by(["--help"])
    assert "click" in loaded
    assert not loaded & set(HEAVY_FOR_HELP)


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Nvidia beats estimates</title><link>https://w.example.com/1</link>
<pubDate>Tue, 24 Nov 2026 05:00:00 GMT</pubDate></item></channel></rss>"""


def test_fetching_does_not_load_numpy(tmp_path: Path, feed_server: FeedServer) -> None:
    feed_server.routes["/feed"] = Route(RSS)
    url = feed_server.url("/feed")
    config = write_config(tmp_path, [{"name": "Wire", "url": url, "section": "stocks"}])
    modules = loaded_by(
        ["--config", str(config), "fetch"], {"DIGEST_DB": _db(tmp_path)}, whole_names=True
    )
    loaded = {name.partition(".")[0] for name in modules}
    assert "aiohttp" in loaded  # it did fetch, and it created the database without SQLAlchemy
    assert "sqlalchemy" not in loaded
    assert not loaded & {*NUMERIC, "bs4", "jinja2"}
    # Only the module of the fetch command among the command modules.
    commands = {name for name in modules if name.startswith("digest.cli.")}
    assert commands <= {"digest.cli._app", "digest.cli.edition", "digest.cli.output"}
    store = Store(_db(tmp_path))
    try:
        assert [feed.stored_items for feed in store.feed_states()] == [1]
    finally:
        store.close()


def test_fetching_into_an_up_to_date_sqlite_file_does_not_load_sqlalchemy(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.routes["/feed"] = Route(RSS)
    url = feed_server.url("/feed")
    config = write_config(tmp_path, [{"name": "Wire", "url": url, "section": "stocks"}])
    Store(_db(tmp_path)).close()  # created and migrated
    args = ["--config", str(config), "fetch"]
    loaded = loaded_by(args, {"DIGEST_DB": _db(tmp_path)})
    assert "aiohttp" in loaded and "sqlalchemy" not in loaded
    store = Store(_db(tmp_path))
    try:
        (feed,) = store.feed_states()
        stored = store.items_between(
            dt.datetime(2026, 11, 24, tzinfo=dt.UTC), dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
        )
    finally:
        store.close()
    assert feed.url == url and feed.stored_items == 1 and feed.last_status == 200
    assert [item.title for item in stored] == ["Nvidia beats estimates"]


def test_a_fetch_where_every_feed_is_unchanged_loads_no_parser(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    feed_server.routes["/feed"] = Route(RSS, headers={"ETag": '"v1"'})
    config = write_config(
        tmp_path, [{"name": "Wire", "url": feed_server.url("/feed"), "section": "stocks"}]
    )
    env = {"DIGEST_DB": _db(tmp_path)}
    assert "fastfeedparser" in loaded_by(["--config", str(config), "fetch"], env)
    again = loaded_by(["--config", str(config), "fetch"], env)
    assert feed_server.requests[-1][1]["If-None-Match"] == '"v1"'  # answered 304
    assert not again & {"fastfeedparser", "feedparser", "nh3", "lxml"}


def test_many_feeds_are_parsed_in_a_process_of_their_own(
    tmp_path: Path, feed_server: FeedServer
) -> None:
    # Whole batches only, so that the command's own process has no leftover batch to parse:
    # if it stored every item without loading a parser, another process parsed them.
    count = max(PARSER_PROCESS_FROM, BATCH) // BATCH * BATCH
    feeds = []
    for n in range(count):
        body = RSS.replace(b"/1<", f"/{n}<".encode())
        feed_server.routes[f"/f/{n}"] = Route(body, delay=0.005 * (n % 7))
        feeds.append({"name": f"Feed {n:03}", "url": feed_server.url(f"/f/{n}")})
    config = write_config(tmp_path, [{**feed, "section": "stocks"} for feed in feeds])
    loaded = loaded_by(["--config", str(config), "fetch"], {"DIGEST_DB": _db(tmp_path)})
    assert not loaded & {"fastfeedparser", "feedparser", "nh3", "lxml"}
    store = Store(_db(tmp_path))
    try:
        states = {feed.name: feed for feed in store.feed_states()}
    finally:
        store.close()
    assert [states[f"Feed {n:03}"].stored_items for n in range(count)] == [1] * count


def test_sending_does_not_load_numpy(tmp_path: Path) -> None:
    config = write_config(
        tmp_path, [{"name": "Wire", "url": "http://127.0.0.1:9/feed", "section": "stocks"}]
    )
    date = dt.date(2026, 11, 24)
    store = Store(_db(tmp_path))
    try:
        store.add_subscriber(Subscriber("ann@example.com"), dt.datetime.now(dt.UTC))
        settings = load_settings(config, env={"DIGEST_DB": _db(tmp_path)})
        story = Story((make_item("Nvidia beats estimates"),), Section.STOCKS, 1.0)
        store.save_edition(_edition(settings.edition.title, date, story), dt.datetime.now(dt.UTC))
    finally:
        store.close()
    outbox = tmp_path / "outbox"
    env = {"DIGEST_DB": _db(tmp_path), "DIGEST_OUTBOX": str(outbox)}
    loaded = loaded_by(
        ["--config", str(config), "send", "--date", date.isoformat(), "--force"], env
    )
    assert "jinja2" in loaded  # it did render (one story: under the floor, hence --force)
    assert not loaded & set(NUMERIC)
    (message,) = (outbox / date.isoformat()).glob("*.eml")
    assert b"Nvidia beats estimates" in message.read_bytes()


@pytest.mark.parametrize("module", ["digest.config", "digest.pipeline", "digest.web"])
def test_library_modules_off_the_build_path_do_not_import_numpy(module: str) -> None:
    code = f"import sys, {module}; print(sorted(set(sys.modules) & {set(NUMERIC)!r}))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def _db(directory: Path) -> str:
    return f"sqlite:///{directory / 'digest.db'}"


def _edition(title: str, date: dt.date, story: Story) -> Digest:
    end = dt.datetime(2026, 11, 24, 12, 0, tzinfo=dt.UTC)
    return Digest(date, title, "tagline", end - dt.timedelta(days=1), end, (story,), ())
