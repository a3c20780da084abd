from __future__ import annotations

import csv
from pathlib import Path

from digest.cluster import cluster_items, cluster_texts, tokens

from .conftest import invoke_cli
from .factories import make_item


def test_tokens_drop_stopwords_and_meet_across_inflections() -> None:
    assert tokens("The Fed cuts rates") == tokens("fed cut rate")
    assert "$nvda" not in tokens("$NVDA jumps") and "nvda" in tokens("$NVDA jumps")


def test_same_event_in_other_words_is_one_story() -> None:
    items = [
        make_item("Nvidia beats estimates as data-center sales surge", "Wire"),
        make_item("Nvidia data-center sales surge, beating estimates", "Street"),
        make_item("Nvidia tops estimates on data-center sales", "Capital"),
        make_item("Bitcoin ETF sees record inflows", "Coin"),
        make_item("Record inflows into bitcoin ETF", "Chain"),
        make_item("Solana network halts block production for hours", "Block"),
    ]
    groups = [[item.source_name for item in group] for group in cluster_items(items)]
    assert sorted(groups) == [["Block"], ["Coin", "Chain"], ["Wire", "Street", "Capital"]]


def test_generic_market_wraps_do_not_chain_into_one_story() -> None:
    texts = [
        ("Stocks rise as Treasury yields fall", ""),
        ("Stocks rise as oil prices slide", ""),
        ("Stocks rise as tech earnings impress", ""),
        ("Stocks fall as inflation data surprises", ""),
    ]
    assert len(cluster_texts(texts)) == 4


def test_empty_and_single_inputs() -> None:
    assert cluster_texts([]) == []
    assert cluster_texts([("Only one", "")]) == [[0]]


def test_cluster_command_reads_headlines_and_writes_clusters(tmp_path: Path) -> None:
    headlines = tmp_path / "headlines.csv"
    headlines.write_text(
        "id,title,published\n"
        "a,Nvidia beats estimates as data-center sales surge,2026-11-23T21:00:00Z\n"
        "b,Nvidia data-center sales surge past estimates,1795467600000\n"
        "c,Solana network halts block production,\n",
        encoding="utf-8",
    )
    output = tmp_path / "clusters.csv"
    code, out = invoke_cli(
        tmp_path / "unused.yaml", "cluster", "--input", str(headlines), "--output", str(output)
    )
    assert code == 0, out
    rows = list(csv.DictReader(output.read_text(encoding="utf-8").splitlines()))
    assert [row["id"] for row in rows] == ["a", "b", "c"]
    cluster_of = {row["id"]: row["cluster"] for row in rows}
    assert cluster_of["a"] == cluster_of["b"] != cluster_of["c"]


def test_cluster_command_names_a_bad_row(tmp_path: Path) -> None:
    headlines = tmp_path / "headlines.csv"
    headlines.write_text("id,title,published\na,Title,yesterday\n", encoding="utf-8")
    code, out = invoke_cli(
        tmp_path / "unused.yaml",
        "cluster",
        "--input",
        str(headlines),
        "--output",
        str(tmp_path / "out.csv"),
    )
    assert code == 1 and f"{headlines}:2: published: expected ISO 8601" in out
    assert not (tmp_path / "out.csv").exists()
