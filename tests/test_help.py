"""What ``--help`` says matches what runs: date formats, the environment, the CSV columns."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest

from .conftest import digest_command, write_config
from .test_cli import COMMANDS

FEED = {"name": "Wire", "url": "https://wire.example.com/rss", "section": "stocks"}


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_config(tmp_path, [FEED])


def _takes_date(command: click.Command) -> bool:
    return any("--date" in parameter.opts for parameter in command.params)


DATED = [path for path, command in COMMANDS if _takes_date(command)]


def test_the_commands_that_take_a_date_are_found() -> None:
    assert {("run",), ("build",), ("send",)} <= set(DATED)


@pytest.mark.parametrize("path", DATED, ids=[" ".join(path) for path in DATED])
def test_date_reads_as_yyyy_mm_dd_in_help(config: Path, path: tuple[str, ...]) -> None:
    result = digest_command(*path, "--help", config=config)
    assert result.returncode == 0, result.stderr
    assert "--date YYYY-MM-DD" in result.stdout
    assert "%" not in result.stdout  # no strftime pattern such as [%Y-%m-%d]


def test_a_date_in_another_form_is_a_usage_error(config: Path) -> None:
    result = digest_command("build", "--date", "11/24/2026", config=config)
    assert result.returncode == 2
    assert "Invalid value for '--date'" in result.stderr


def digest_variables() -> set[str]:
    """Every DIGEST_* name ``digest/config.py`` reads, as written there."""
    source = (Path(__file__).resolve().parent.parent / "digest" / "config.py").read_text(
        encoding="utf-8"
    )
    spelled = set(re.findall(r"\bDIGEST_([A-Z][A-Z_]*[A-Z])\b", source))
    prefixed = set(re.findall(r"\{ENV_PREFIX\}([A-Z][A-Z_]*[A-Z])\b", source))
    return {f"DIGEST_{name}" for name in spelled | prefixed}


def test_help_lists_every_digest_variable_one_line_each(config: Path) -> None:
    variables = digest_variables()
    assert {
        "DIGEST_DB",
        "DIGEST_OUTBOX",
        "DIGEST_SMTP_URL",
        "DIGEST_SECRET_KEY",
        "DIGEST_DKIM_KEY",
        "DIGEST_DKIM_SELECTOR",
    } <= variables
    result = digest_command("--help", config=config, env={"COLUMNS": "80"})
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in result.stdout.splitlines()]
    for name in sorted(variables):
        described = [line for line in lines if line.split(" ", 1)[0] == name]
        assert len(described) == 1, f"{name} is not on a line of its own in digest --help"
        assert len(described[0].split()) > 3, f"{name} has no description"
    assert all(len(line) <= 80 for line in result.stdout.splitlines())


def test_import_help_names_the_columns_it_reads(config: Path, tmp_path: Path) -> None:
    result = digest_command("subscribers", "import", "--help", config=config)
    assert result.returncode == 0, result.stderr
    for column in ("'email'", "'name'", "'watch'"):
        assert column in result.stdout
    people = tmp_path / "people.csv"
    people.write_text('email,name,watch\nann@example.com,Ann,"NVDA,BTC"\n', encoding="utf-8")
    imported = digest_command("subscribers", "import", "--confirmed", str(people), config=config)
    assert imported.returncode == 0, imported.stderr
    listed = digest_command("subscribers", "list", "--format", "json", config=config)
    assert json.loads(listed.stdout) == [
        {"email": "ann@example.com", "name": "Ann", "status": "active", "watch": ["NVDA", "BTC"]}
    ]


def test_export_help_names_the_columns_it_writes(config: Path) -> None:
    result = digest_command("subscribers", "export", "--help", config=config)
    exported = digest_command("subscribers", "export", config=config)
    header = exported.stdout.splitlines()[0].split(",")
    assert header == ["email", "name", "status", "watch"]
    columns = "columns are email, name, status (active, pending, unsubscribed, bounced or"
    assert columns + " complained) and watch" in " ".join(result.stdout.split())


@pytest.mark.parametrize("name", ["feeds.yaml", "samples/feeds.yaml"])
def test_the_config_files_name_only_variables_that_are_read(name: str) -> None:
    text = (Path(__file__).resolve().parent.parent / name).read_text(encoding="utf-8")
    named = set(re.findall(r"\bDIGEST_[A-Z][A-Z_]*[A-Z]\b", text))
    assert named and named <= digest_variables()
