"""Commands over a CSV of headlines: the edition's clusterer and ticker finder, for scoring."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from ..headlines import read_headlines, write_rows
from ..models import Method
from ._app import F, main, say


def _csv_files(reads: str, writes: str) -> Callable[[F], F]:
    """The --input and --output options of the headline commands."""

    def decorate(function: F) -> F:
        function = click.option(
            "--output",
            "output_path",
            type=click.Path(path_type=Path, dir_okay=False),
            required=True,
            help=f"CSV to write: {writes}.",
        )(function)
        return click.option(
            "--input",
            "input_path",
            type=click.Path(path_type=Path, dir_okay=False, exists=True),
            required=True,
            help=f"CSV with {reads}.",
        )(function)

    return decorate


@main.command()
@_csv_files("id,title and optionally summary,source,published", "id,cluster")
@click.option(
    "--method",
    type=click.Choice([method.value for method in Method]),
    default=Method.EMBEDDING.value,
    show_default=True,
    help="light: TF-IDF of words and word parts; embedding: blends in a sentence embedding "
    "(needs `make embeddings`).",
)
def cluster(input_path: Path, output_path: Path, method: str) -> None:
    """Group headlines into stories with the clusterer the edition uses."""
    from ..cluster import Text, cluster_texts  # numpy and scipy: only for this command

    headlines = read_headlines(input_path)
    texts = [Text(headline.title, headline.summary, headline.published) for headline in headlines]
    groups = cluster_texts(texts, Method(method))
    label = {index: number for number, group in enumerate(groups) for index in group}
    write_rows(
        output_path,
        ("id", "cluster"),
        ((headline.id, str(label[index])) for index, headline in enumerate(headlines)),
    )
    say(f"{len(headlines)} headlines in {len(groups)} stories: {output_path}")


@main.command()
@_csv_files("id,title and optionally summary", "id,tickers (space-separated, upper case)")
def tickers(input_path: Path, output_path: Path) -> None:
    """Recognise stock tickers and coins in headlines ($NVDA, NYSE: BRK.B, Nvidia, Bitcoin)."""
    from ..tickers import find_tickers

    headlines = read_headlines(input_path)
    rows = [
        (headline.id, " ".join(find_tickers(f"{headline.title} {headline.summary}")))
        for headline in headlines
    ]
    write_rows(output_path, ("id", "tickers"), rows)
    tagged = sum(1 for _, symbols in rows if symbols)
    say(f"{len(rows)} headlines, {tagged} with tickers: {output_path}")
