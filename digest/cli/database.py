"""The database itself: copying a store to another database."""

from __future__ import annotations

import click

from ._app import main, say


@main.command()
@click.option(
    "--from", "source", required=True, metavar="URL", help="The store to copy (sqlite:///…)."
)
@click.option(
    "--to",
    "target",
    required=True,
    metavar="URL",
    help="An empty database to copy it into (postgresql://…).",
)
def migrate(source: str, target: str) -> None:
    """Copy a whole store into another, empty database, verified by counting every table.

    Both are brought to the current schema first; the copy is one transaction on the
    target, so it is all there or not at all. Point DIGEST_DB at the target afterwards.
    """
    from ..store._database import shown
    from ..store.transfer import copy_store

    counts = copy_store(source, target)
    listed = ", ".join(f"{count:,} {table}" for table, count in counts.items())
    say(f"Copied {shown(source)} to {shown(target)}: {listed}.")
