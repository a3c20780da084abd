from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from .conftest import invoke_cli, write_config
from .test_end_to_end import digest_command

FEED = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks", "weight": 1.0}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, [FEED])


invoke = invoke_cli


def test_subscribers_add_list_export_remove(config: Path) -> None:
    code, out = invoke(config, "subscribers", "add", "Ann@Example.com", "--name", "Ann")
    assert code == 0 and "Subscribed Ann@example.com." in out
    code, out = invoke(config, "subscribers", "add", "Ann@example.com")
    assert code == 0 and "already subscribed" in out
    code, out = invoke(config, "subscribers", "list")
    assert code == 0 and "Ann@example.com" in out and "1 subscriber." in out
    code, out = invoke(config, "subscribers", "export")
    assert code == 0
    assert list(csv.reader(io.StringIO(out))) == [
        ["email", "name", "status", "watch"],
        ["Ann@example.com", "Ann", "active", ""],
    ]
    code, out = invoke(config, "subscribers", "remove", "Ann@example.com")
    assert code == 0
    code, out = invoke(config, "subscribers", "export")
    assert out.strip() == "email,name,status,watch"


def test_watchlist_is_kept_checked_and_exported(config: Path) -> None:
    code, out = invoke(config, "subscribers", "add", "ann@example.com", "--watch", "nvda, BTC")
    assert code == 0, out
    code, out = invoke(config, "subscribers", "list")
    assert "NVDA BTC" in out
    code, out = invoke(config, "subscribers", "export")
    assert 'ann@example.com,,active,"NVDA,BTC"' in out
    code, out = invoke(config, "subscribers", "add", "bob@example.com", "--watch", "NVDA,QQQQQ")
    assert code == 1 and "unknown ticker or coin 'QQQQQ'" in out


def test_import_is_all_or_nothing_and_names_the_bad_line(config: Path, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("email,name\ngood@example.com,G\nnot-an-address,B\n", encoding="utf-8")
    code, out = invoke(config, "subscribers", "import", str(people))
    assert code == 1
    assert f"{people}:3: 'not-an-address'" in out
    code, out = invoke(config, "subscribers", "export")
    assert "good@example.com" not in out


def test_import_then_export_round_trips(config: Path, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("Email,Name\na@example.com,A\nb@example.org,\n", encoding="utf-8")
    code, out = invoke(config, "subscribers", "import", str(people))
    assert code == 0 and "Imported 2 new subscribers." in out
    code, out = invoke(config, "subscribers", "export")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["email"], r["name"]) for r in rows] == [
        ("a@example.com", "A"),
        ("b@example.org", ""),
    ]


def test_user_errors_are_one_line_without_traceback(tmp_path: Path, config: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("edition: {}\nfeeds: []\n", encoding="utf-8")
    cases = [
        digest_command("feeds", config=bad),
        digest_command("feeds", config=tmp_path / "absent.yaml"),
        digest_command("subscribers", "add", "nope", config=config),
        digest_command("subscribers", "remove", "who@example.com", config=config),
        digest_command("send", "--date", "2026-11-24", config=config),
    ]
    for result in cases:
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr


def test_feeds_lists_each_configured_feed(config: Path) -> None:
    code, out = invoke(config, "feeds")
    assert code == 0 and "Wire" in out and "never fetched" in out


def test_every_command_has_help(config: Path) -> None:
    commands = [
        [],
        ["run"],
        ["fetch"],
        ["build"],
        ["send"],
        ["preview"],
        ["demo"],
        ["feeds"],
        ["subscribers"],
        ["serve"],
        ["feeds", "add"],
        ["feeds", "remove"],
        ["feeds", "check"],
        ["feeds", "import"],
        ["feeds", "export"],
        ["subscribers", "add"],
        ["subscribers", "list"],
        ["subscribers", "remove"],
        ["subscribers", "import"],
        ["subscribers", "export"],
    ]
    for command in commands:
        code, out = invoke(config, *command, "--help")
        assert code == 0 and "Usage:" in out, command
        assert len(out.split("Usage:")[1].strip().splitlines()) > 1, command
