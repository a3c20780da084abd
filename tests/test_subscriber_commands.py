"""``digest subscribers``: one subscriber per address in any letter case."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from .conftest import invoke_cli, write_config

FEED = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, [FEED])


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


# -- one subscriber per address ---------------------------------------------------------------


def test_letter_case_does_not_make_another_subscriber(config: Path, tmp_path: Path) -> None:
    people = write(
        tmp_path / "people.csv", "email\nDup@Example.com\ndup@example.com\nDUP@EXAMPLE.COM\n"
    )
    out = ok(config, "import", str(people))
    assert "Imported 1 new subscriber." in out
    assert "already subscribed" in ok(config, "add", "dUp@example.com")
    assert statuses(config) == {"Dup@example.com": "active"}
    assert ok(config, "remove", "DUP@example.COM").strip() == "Removed Dup@example.com."
    assert export(config) == []


def test_remove_of_an_unknown_address_says_so(config: Path) -> None:
    code, out = invoke_cli(config, "subscribers", "remove", "who@example.com")
    assert code == 1 and "who@example.com: not a subscriber" in out
