from __future__ import annotations

import csv
import importlib
import io
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from digest.cli import main
from digest.cli._app import COMMANDS as COMMAND_MODULES

from .conftest import digest_command, digest_process, invoke_cli, write_config

FEED = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks", "weight": 1.0}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, [FEED])


invoke = invoke_cli


def test_subscribers_add_list_export_remove(config: Path) -> None:
    code, out = invoke(
        config, "subscribers", "add", "--confirmed", "Ann@Example.com", "--name", "Ann"
    )
    assert code == 0 and "Subscribed Ann@example.com." in out
    code, out = invoke(config, "subscribers", "add", "--confirmed", "Ann@example.com")
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
    code, out = invoke(
        config, "subscribers", "add", "--confirmed", "ann@example.com", "--watch", "nvda, BTC"
    )
    assert code == 0, out
    code, out = invoke(config, "subscribers", "list")
    assert "NVDA BTC" in out
    code, out = invoke(config, "subscribers", "export")
    assert 'ann@example.com,,active,"NVDA,BTC"' in out
    code, out = invoke(
        config, "subscribers", "add", "--confirmed", "bob@example.com", "--watch", "NVDA,QQQQQ"
    )
    assert code == 1 and "unknown ticker or coin 'QQQQQ'" in out


def test_import_is_all_or_nothing_and_names_the_bad_line(config: Path, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("email,name\ngood@example.com,G\nnot-an-address,B\n", encoding="utf-8")
    code, out = invoke(config, "subscribers", "import", "--confirmed", str(people))
    assert code == 1
    assert f"{people}:3: 'not-an-address'" in out
    code, out = invoke(config, "subscribers", "export")
    assert "good@example.com" not in out


def test_import_then_export_round_trips(config: Path, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_text("Email,Name\na@example.com,A\nb@example.org,\n", encoding="utf-8")
    code, out = invoke(config, "subscribers", "import", "--confirmed", str(people))
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


def test_installed_command_reports_a_user_error_on_stderr_with_exit_status_1(
    tmp_path: Path,
) -> None:
    # Once through the real entry point, in a process of its own: the exit status and
    # the stderr that a shell sees, which the in-process runs above only stand in for.
    script = shutil.which("digest", path=str(Path(sys.executable).parent))
    assert script, f"no digest command beside {sys.executable}: run 'make setup'"
    absent = tmp_path / "absent.yaml"
    result = digest_process("feeds", config=absent, command=(script,))
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert result.stderr == f"Error: {absent}: no such file (pass --config PATH)\n"


def test_feeds_lists_each_configured_feed(config: Path) -> None:
    code, out = invoke(config, "feeds")
    assert code == 0 and "Wire" in out and "never fetched" in out


def _commands(
    group: click.Group, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    """Every command under ``group``, through its subgroups, with the words that name it."""
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        assert command is not None, name
        yield (*path, name), command
        if isinstance(command, click.Group):
            yield from _commands(command, (*path, name))


#: The whole command tree, read from the click group: a new command is covered as it is added.
COMMANDS = [((), main), *_commands(main)]


def test_every_command_is_listed_with_the_module_that_defines_it() -> None:
    for module in set(COMMAND_MODULES.values()):
        importlib.import_module(f"digest.cli.{module}")
    assert set(main.commands) == set(COMMAND_MODULES)
    for name, command in main.commands.items():
        assert command.callback is not None
        assert command.callback.__module__ == f"digest.cli.{COMMAND_MODULES[name]}", name


def test_the_command_tree_reaches_into_subgroups() -> None:
    paths = {path for path, _ in COMMANDS}
    assert {(), ("run",), ("demo",), ("feeds",), ("subscribers",)} <= paths
    assert {("feeds", "import"), ("subscribers", "export")} <= paths


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(path) or "digest" for path, _ in COMMANDS]
)
def test_every_command_has_help(
    config: Path, path: tuple[str, ...], command: click.Command
) -> None:
    help_text = (command.help or "").split("\f")[0].strip()
    assert help_text, f"{path}: no help text"
    code, out = invoke(config, *path, "--help")
    assert code == 0, out
    assert out.startswith(f"Usage: main {' '.join(path)}".rstrip()), out
    # Click rewraps the text to the terminal width (and drops its \b markers): compare words.
    words = [word for word in help_text.split() if word != "\b"]
    assert " ".join(words) in " ".join(out.split()), out
