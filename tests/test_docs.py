"""The README and the command agree: every command and option the README shows exists, and
every command and option that exists is shown in the README.

The README's commands are read from its code: fenced blocks and `inline spans`. An invocation
starts at the word ``digest`` (or ``.venv/bin/digest``) and runs to the end of the line, a pipe,
a redirection or a ``#`` comment; options belong to the command named before them.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest

from digest.cli import main

from .conftest import REPO, DemoEdition, digest_command
from .test_cli import COMMANDS
from .test_help import digest_variables

README = REPO / "README.md"
STOPS = {"|", ">", ">>", "<", "&&", ";"}


def _code(text: str) -> Iterator[str]:
    """Each line of the fenced blocks, and each inline code span outside them."""
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif fenced:
            yield line
        else:
            yield from re.findall(r"`([^`]+)`", line)


def _is_digest(word: str) -> bool:
    return word == "digest" or word.endswith("/bin/digest")


@dataclass
class Mentions:
    """What the README's invocations name: command paths, options per command, mistakes."""

    paths: set[tuple[str, ...]] = field(default_factory=set)
    options: set[tuple[tuple[str, ...], str]] = field(default_factory=set)
    unknown: list[str] = field(default_factory=list)


def _option(command: click.Command, name: str) -> click.Parameter | None:
    context = click.Context(command)
    options = [*command.params, command.get_help_option(context)]
    return next((p for p in options if p is not None and name in p.opts), None)


def _arguments_taken(command: click.Command) -> float:
    counts = [p.nargs for p in command.params if isinstance(p, click.Argument)]
    return float("inf") if -1 in counts else sum(counts)


def _read(snippet: str, mentions: Mentions) -> None:
    words = re.split(r"(?:^|\s)#", snippet, maxsplit=1)[0].split()
    starts = [index for index, word in enumerate(words) if _is_digest(word)]
    for start in starts:
        command: click.Command = main
        path: tuple[str, ...] = ()
        mentions.paths.add(path)
        rest = iter(words[start + 1 :])
        arguments = 0
        for raw in rest:
            if raw in STOPS or raw.startswith(">"):
                break
            word = raw.strip("[]")
            if word.startswith("--"):
                name = word.split("=", 1)[0]
                option = _option(command, name)
                if option is None:
                    mentions.unknown.append(f"{' '.join(('digest', *path))} {name}: no such option")
                    continue
                mentions.options.add((path, name))
                takes_value = isinstance(option, click.Option) and not (
                    option.is_flag or option.count
                )
                if takes_value and "=" not in word:
                    next(rest, None)
            elif isinstance(command, click.Group):
                sub = command.get_command(click.Context(command), word)
                if sub is None:
                    mentions.unknown.append(
                        f"{' '.join(('digest', *path))} {word}: no such command"
                    )
                    break
                command, path = sub, (*path, word)
                mentions.paths.add(path)
            else:  # an argument of the command, such as URL or people.csv
                arguments += 1
                if arguments > _arguments_taken(command):
                    mentions.unknown.append(f"{' '.join(('digest', *path))} {word}: no argument")


def _mentions() -> Mentions:
    mentions = Mentions()
    for snippet in _code(README.read_text(encoding="utf-8")):
        _read(snippet, mentions)
    return mentions


MENTIONS = _mentions()
OPTIONS = [
    (path, name)
    for path, command in COMMANDS
    for parameter in command.params
    if isinstance(parameter, click.Option)
    for name in parameter.opts
    if name.startswith("--")
]


def test_the_readme_is_read() -> None:
    assert {("run",), ("feeds", "add"), ("subscribers", "import"), ("cluster",)} <= MENTIONS.paths
    assert (("feeds", "add"), "--weight") in MENTIONS.options
    assert (("serve",), "--port") in MENTIONS.options


def test_every_command_and_option_in_the_readme_exists() -> None:
    assert MENTIONS.unknown == []


def test_every_option_the_readme_names_on_its_own_exists() -> None:
    # Such as "given `--config PATH`" or "takes `--help`" in the prose.
    spans = [span for span in _code(README.read_text(encoding="utf-8")) if span.startswith("--")]
    assert spans
    known = {name for _, name in OPTIONS} | {"--help"}
    assert {span.split()[0].split("=")[0] for span in spans} - known == set()


@pytest.mark.parametrize(
    "path", [path for path, _ in COMMANDS], ids=[" ".join(p) or "digest" for p, _ in COMMANDS]
)
def test_every_command_is_in_the_readme(path: tuple[str, ...]) -> None:
    assert path in MENTIONS.paths, f"the README never shows 'digest {' '.join(path)}'"


@pytest.mark.parametrize(
    ("path", "name"), OPTIONS, ids=[" ".join((*path, name)) for path, name in OPTIONS]
)
def test_every_option_is_in_the_readme(path: tuple[str, ...], name: str) -> None:
    command = " ".join(("digest", *path))
    assert (path, name) in MENTIONS.options, f"the README never shows '{command} ... {name}'"


def test_every_digest_variable_is_in_the_readme() -> None:
    text = README.read_text(encoding="utf-8")
    missing = {name for name in digest_variables() if f"`{name}`" not in text}
    assert missing == set()


def test_the_readme_sample_commands_do_what_it_says(
    demo_edition: DemoEdition, tmp_path: Path
) -> None:
    # After `make demo`: today's edition has the stories, the days around it few or none,
    # and `digest feeds` shows the nine sample feeds fetched.
    samples = tmp_path / "samples"
    shutil.copytree(demo_edition.config.parent, samples)
    config = samples / "feeds.yaml"
    today = dt.date.fromisoformat(demo_edition.messages[0].parent.name)  # outbox/<date>/

    def stories(date: dt.date) -> int:
        built = digest_command("build", "--date", date.isoformat(), config=config)
        assert built.returncode == 0, built.stderr
        count = re.fullmatch(rf"Built the edition of {date}: (\d+) stories, .*\n", built.stdout)
        assert count is not None, built.stdout
        return int(count[1])

    assert stories(today) >= 20
    assert stories(today - dt.timedelta(days=1)) < stories(today) / 2
    assert stories(today + dt.timedelta(days=1)) < stories(today) / 2
    feeds = digest_command("feeds", "--format", "json", config=config)
    assert feeds.returncode == 0, feeds.stderr
    assert [feed["status"] for feed in json.loads(feeds.stdout)] == ["ok"] * 9
