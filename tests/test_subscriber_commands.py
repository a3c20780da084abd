"""``digest subscribers``: unsubscribed stays unsubscribed, one subscriber per address in any
letter case, and ``add`` changes an address already there only when asked."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from digest.store import Store

from .conftest import invoke_cli, write_config
from .factories import BASE

FEED = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, [FEED])


def unsubscribe(config: Path, email: str) -> None:
    """What the unsubscribe link does, on the database beside ``config``."""
    store = Store(f"sqlite:///{config.parent / 'digest.db'}")
    try:
        assert store.unsubscribe(email, BASE)
    finally:
        store.close()


def ok(config: Path, *args: str) -> str:
    """The output of ``digest subscribers ARGS``, which must succeed."""
    code, out = invoke_cli(config, "subscribers", *args)
    assert code == 0, out
    return out


def export(config: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(ok(config, "export"))))


def statuses(config: Path) -> dict[str, str]:
    return {row["email"]: row["status"] for row in export(config)}


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# -- unsubscribed stays unsubscribed ---------------------------------------------------------


def test_reimporting_an_export_does_not_resubscribe_anybody(config: Path, tmp_path: Path) -> None:
    ok(config, "add", "ann@example.com")
    ok(config, "add", "bob@example.com")
    unsubscribe(config, "bob@example.com")
    exported = write(tmp_path / "export.csv", ok(config, "export"))
    plain = write(tmp_path / "plain.csv", "email\nBob@Example.com\n")
    for file in (exported, plain):
        for update in ((), ("--update",)):
            out = ok(config, "import", str(file), *update)
            assert "Imported 0 new subscribers." in out
            assert "skipped bob@example.com: unsubscribed on 2026-11-24" in out
    assert statuses(config) == {"ann@example.com": "active", "bob@example.com": "unsubscribed"}


def test_add_does_not_resubscribe_an_address_that_unsubscribed(config: Path) -> None:
    ok(config, "add", "bob@example.com", "--name", "Bob")
    unsubscribe(config, "bob@example.com")
    assert ok(config, "add", "BOB@example.com").strip() == (
        "Skipped bob@example.com: unsubscribed on 2026-11-24; only they can subscribe again."
    )
    assert ok(config, "add", "bob@example.com", "--update", "--name", "Rob").strip() == (
        "Skipped bob@example.com: unsubscribed on 2026-11-24; updated its name; "
        "only they can subscribe again."
    )
    assert export(config) == [
        {"email": "bob@example.com", "name": "Rob", "status": "unsubscribed", "watch": ""}
    ]


def test_an_export_carried_into_a_new_database_keeps_its_unsubscribes(
    config: Path, tmp_path: Path
) -> None:
    ok(config, "add", "ann@example.com")
    ok(config, "add", "bob@example.com")
    unsubscribe(config, "bob@example.com")
    exported = write(tmp_path / "export.csv", ok(config, "export"))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    other = write_config(elsewhere, [FEED])
    out = ok(other, "import", str(exported))
    assert "Imported 2 new subscribers." in out and "1 of them unsubscribed" in out
    assert statuses(other) == {"ann@example.com": "active", "bob@example.com": "unsubscribed"}


def test_an_unknown_status_names_its_line(config: Path, tmp_path: Path) -> None:
    people = write(tmp_path / "people.csv", "email,status\nann@example.com,paused\n")
    code, out = invoke_cli(config, "subscribers", "import", str(people))
    assert code == 1
    assert (
        "people.csv:2: status 'paused': expected one of "
        "'pending', 'active', 'unsubscribed', 'bounced', 'complained'"
    ) in out


# -- one subscriber per address ---------------------------------------------------------------


def test_letter_case_does_not_make_another_subscriber(config: Path, tmp_path: Path) -> None:
    people = write(
        tmp_path / "people.csv", "email\nDup@Example.com\ndup@example.com\nDUP@EXAMPLE.COM\n"
    )
    out = ok(config, "import", str(people))
    assert "Imported 1 new subscriber." in out and "2 already subscribed, unchanged" in out
    out = ok(config, "add", "dUp@example.com")
    assert out.strip() == "Dup@example.com is already subscribed; nothing changed."
    assert statuses(config) == {"Dup@example.com": "active"}
    assert ok(config, "remove", "DUP@example.COM").strip() == "Removed Dup@example.com."
    assert export(config) == []


def test_remove_of_an_unknown_address_says_so(config: Path) -> None:
    code, out = invoke_cli(config, "subscribers", "remove", "who@example.com")
    assert code == 1 and "who@example.com: not a subscriber" in out


# -- add changes an address already there only with --update -----------------------------------


def test_add_of_an_existing_address_changes_nothing_without_update(config: Path) -> None:
    ok(config, "add", "ann@example.com", "--name", "Ann", "--watch", "NVDA")
    out = ok(config, "add", "Ann@example.com", "--name", "Annie", "--watch", "BTC")
    assert out.strip() == (
        "ann@example.com is already subscribed; nothing changed "
        "(pass --update to change its name and watchlist)."
    )
    assert export(config) == [
        {"email": "ann@example.com", "name": "Ann", "status": "active", "watch": "NVDA"}
    ]


def test_add_with_update_changes_name_and_watchlist_and_says_which(config: Path) -> None:
    ok(config, "add", "ann@example.com", "--name", "Ann", "--watch", "NVDA")
    out = ok(config, "add", "ann@example.com", "--update", "--watch", "BTC")
    assert out.strip() == "ann@example.com is already subscribed; updated its watchlist."
    out = ok(config, "add", "ann@example.com", "--update", "--name", "Annie")
    assert out.strip() == "ann@example.com is already subscribed; updated its name."
    out = ok(config, "add", "ann@example.com", "--update", "--name", "Annie")
    assert out.strip() == "ann@example.com is already subscribed; nothing changed."
    assert export(config) == [
        {"email": "ann@example.com", "name": "Annie", "status": "active", "watch": "BTC"}
    ]


def test_import_with_update_changes_details_and_reports_counts(
    config: Path, tmp_path: Path
) -> None:
    ok(config, "add", "ann@example.com", "--name", "Ann")
    people = write(
        tmp_path / "people.csv", "email,name\nann@example.com,Annie\nbob@example.com,Bob\n"
    )
    out = ok(config, "import", str(people))
    assert "Imported 1 new subscriber." in out
    assert "1 already subscribed, unchanged (pass --update to change them)" in out
    assert export(config)[0]["name"] == "Ann"
    out = ok(config, "import", str(people), "--update")
    assert "Imported 0 new subscribers." in out and "1 already subscribed, updated" in out
    assert [row["name"] for row in export(config)] == ["Annie", "Bob"]
