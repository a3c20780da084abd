"""What ``--help`` says matches what runs: date formats, the environment, the CSV columns."""

from __future__ import annotations

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
