from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform

from digest import cluster as clustering
from digest.cluster import Text, cluster_items, cluster_texts, is_generic, tokens
from digest.linkage import average_linkage
from digest.models import Method

from .conftest import invoke_cli
from .factories import make_item, sample_items


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
    groups = [[item.source_name for item in group] for group in cluster_items(items, Method.LIGHT)]
    assert sorted(groups) == [["Block"], ["Coin", "Chain"], ["Wire", "Street", "Capital"]]


def test_generic_market_wraps_do_not_chain_into_one_story() -> None:
    texts = [
        Text("Stocks rise as Treasury yields fall"),
        Text("Stocks rise as oil prices slide"),
        Text("Stocks rise as tech earnings impress"),
        Text("Stocks fall as inflation data surprises"),
    ]
    assert all(is_generic(text.title) for text in texts)
    assert len(cluster_texts(texts, Method.LIGHT)) == 4


def test_empty_and_single_inputs() -> None:
    assert cluster_texts([]) == []
    assert cluster_texts([Text("Only one")]) == [[0]]


def test_cluster_command_reads_headlines_and_writes_clusters(tmp_path: Path) -> None:
    headlines = tmp_path / "headlines.csv"
    headlines.write_text(
        "id,title,published\n"
        "a,Nvidia beats estimates as data-center sales surge,2026-11-23T21:00:00Z\n"
        "b,Nvidia data-center sales surge past estimates,1795467600000\n"
        "c,Solana network halts block production,\n",
        encoding="utf-8",
    )
    code, out, rows = _cluster_command(headlines)
    assert code == 0, out
    assert [row["id"] for row in rows] == ["a", "b", "c"]
    cluster_of = {row["id"]: row["cluster"] for row in rows}
    assert cluster_of["a"] == cluster_of["b"] != cluster_of["c"]


def _cluster_command(headlines: Path, *options: str) -> tuple[int, str, list[dict[str, str]]]:
    """Run `digest cluster` on ``headlines``: exit code, output, and the rows written."""
    output = headlines.with_name("clusters.csv")
    output.unlink(missing_ok=True)
    code, out = invoke_cli(
        headlines.with_name("unused.yaml"),
        "cluster",
        "--input",
        str(headlines),
        "--output",
        str(output),
        *options,
    )
    if not output.exists():
        return code, out, []
    return code, out, list(csv.DictReader(output.read_text(encoding="utf-8").splitlines()))


def test_cluster_command_names_a_bad_row(tmp_path: Path) -> None:
    headlines = tmp_path / "headlines.csv"
    headlines.write_text("id,title,published\na,Title,yesterday\n", encoding="utf-8")
    code, out, rows = _cluster_command(headlines)
    assert code == 1 and f"{headlines}:2: published: expected ISO 8601" in out
    assert rows == [] and not (tmp_path / "clusters.csv").exists()


def test_average_linkage_matches_scipy_on_random_points() -> None:
    generator = np.random.default_rng(7)
    for _ in range(20):
        points = generator.normal(size=(40, 3))
        distance = np.sqrt(((points[:, None] - points[None, :]) ** 2).sum(axis=-1))
        cut = float(np.median(distance)) / 2
        expected = fcluster(linkage(squareform(distance, checks=False), "average"), cut, "distance")
        groups = average_linkage(distance.astype(np.float32), np.ones(40, dtype=np.float32), cut)
        ours = {index: number for number, group in enumerate(groups) for index in group}
        for left in range(40):
            for right in range(40):
                same = expected[left] == expected[right]
                assert (ours[left] == ours[right]) == same


def test_average_linkage_weights_and_cannot_links() -> None:
    # Node 2 stands for three items: the merge of 0 and 1 lands nearer to it by that weight.
    distance = np.array(
        [[0, 0.1, 0.5, 0.2], [0.1, 0, 0.5, np.inf], [0.5, 0.5, 0, 0.9], [0.2, np.inf, 0.9, 0]],
        dtype=np.float32,
    )
    groups = average_linkage(distance, np.array([1, 1, 3, 1], dtype=np.float32), 0.45)
    # 3 can never join 1 (infinite), so it can never join the group holding 1 either.
    assert groups == [[0, 1], [2], [3]]


def test_items_further_apart_than_the_window_are_different_stories() -> None:
    start = dt.datetime(2026, 11, 20, tzinfo=dt.UTC)
    texts = [
        Text("Nvidia beats estimates as data-center sales surge", published=start),
        Text(
            "Nvidia beats estimates as data-center sales surge",
            published=start + dt.timedelta(hours=20),
        ),
        Text(
            "Nvidia beats estimates as data-center sales surge",
            published=start + clustering.WINDOW + dt.timedelta(hours=21),
        ),
    ]
    assert cluster_texts(texts, Method.LIGHT) == [[0, 1], [2]]


def test_headlines_naming_different_companies_do_not_merge() -> None:
    texts = [
        Text("Nvidia beats estimates on data-center sales"),
        Text("Nvidia tops estimates on data-center sales"),
        Text("AMD beats estimates on data-center sales"),
        Text("AMD tops estimates on data-center sales"),
    ]
    for method in Method:
        assert cluster_texts(texts, method) == [[0, 1], [2, 3]], method


def test_a_story_keeps_its_identity_across_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    titles = [
        "Fed holds rates steady, signals two cuts next year",
        "Solana network halts block production for hours",
        "Fed keeps rates on hold and pencils in two cuts",
        "Solana block production halted for hours",
        "Fed signals two rate cuts next year after holding steady",
        "Apple to buy back $110 billion of stock",
    ]
    texts = [
        Text(title, published=start + dt.timedelta(hours=hour)) for hour, title in enumerate(titles)
    ]
    for method in Method:
        monkeypatch.setattr(clustering, "BATCH_SIZE", 2500)
        whole = cluster_texts(texts, method)
        assert whole == [[0, 2, 4], [1, 3], [5]], method
        monkeypatch.setattr(clustering, "BATCH_SIZE", 2)
        assert cluster_texts(texts, method) == whole, method


def test_the_clustering_order_follows_time_not_input() -> None:
    start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    texts = [
        Text("Solana block production halted for hours", published=start + dt.timedelta(hours=5)),
        Text("Solana network halts block production", published=start),
        Text("Apple to buy back $110 billion of stock", published=start + dt.timedelta(hours=2)),
    ]
    assert cluster_texts(texts, Method.LIGHT) == [[0, 1], [2]]


def test_the_default_method_groups_paraphrases_sharing_no_word() -> None:
    texts = [
        Text("Twitter is down"),
        Text("Twitter suffers brief outage"),
        Text("Microblogging site back online after going dark"),
        Text("Elephants tell human friend from foe by voice"),
        Text("Elephants can tell human languages apart, study finds"),
    ]
    assert not set(tokens(texts[0].title)) & set(tokens(texts[2].title))
    assert not set(tokens(texts[1].title)) & set(tokens(texts[2].title))
    assert cluster_texts(texts) == [[0, 1, 2], [3, 4]]


def test_the_demo_false_merges_stay_apart() -> None:
    # The sample edition's three pairs that once made one story each (a crypto chip on a UK
    # inflation report), in the company of the edition they were told apart in.
    groups = _sample_edition_groups()
    for left, right in (
        (
            "UK inflation eases to 2.3%, lifting rate cut bets",
            "Polkadot community approves inflation cut",
        ),
        ("Ethereum testnet runs Fusaka without issues", "Tether mints $1 billion USDT on Ethereum"),
        (
            "Payments firm Stripeway prices IPO above range, raising $1.8 billion",
            "Stellar partners with payments firm for cross-border remittances",
        ),
    ):
        assert groups[left] != groups[right], (left, right)


def test_the_sample_edition_keeps_its_labelled_stories() -> None:
    # Each labelled story of tests/data/sample-stories.csv: most of its reports in one group.
    groups = _sample_edition_groups()
    labelled = _sample_labels()
    stories: dict[str, list[str]] = {}
    for title, story in labelled.items():
        stories.setdefault(story, []).append(title)
    whole = [story for story, titles in stories.items() if len({groups[t] for t in titles}) == 1]
    several = [story for story, titles in stories.items() if len(titles) > 1]
    assert len([story for story in several if story in whole]) >= 0.8 * len(several)


def _sample_labels() -> dict[str, str]:
    path = Path(__file__).parent / "data" / "sample-stories.csv"
    rows = csv.DictReader(path.read_text(encoding="utf-8").splitlines())
    return {row["title"]: row["story"] for row in rows}


def _sample_edition_groups() -> dict[str, int]:
    items = sample_items()
    assert {item.title for item in items} == set(_sample_labels())
    return {
        item.title: number for number, group in enumerate(cluster_items(items)) for item in group
    }


def test_cluster_command_takes_the_method(tmp_path: Path) -> None:
    headlines = tmp_path / "headlines.csv"
    headlines.write_text(
        "id,title\na,Solana network halts block production\n"
        "b,Solana block production halted for hours\n"
        "c,Elephants tell human friend from foe by voice\n",
        encoding="utf-8",
    )
    for method in ("light", "embedding"):
        code, out, rows = _cluster_command(headlines, "--method", method)
        assert code == 0, out
        cluster_of = {row["id"]: row["cluster"] for row in rows}
        assert cluster_of["a"] == cluster_of["b"] != cluster_of["c"], method


def test_one_word_shared_by_chance_is_no_story() -> None:
    texts = [
        Text("Gold steadies near $2,650 as dollar firms"),
        Text("Near Protocol ships sharding upgrade"),
        Text("Indian rupee hits record low against the dollar"),
        Text("Filecoin storage deals hit record"),
    ]
    for method in Method:
        assert cluster_texts(texts, method) == [[0], [1], [2], [3]], method


def test_a_rarely_named_company_links_reports_by_itself() -> None:
    # The Walmart reports share only the name (and everyday words); the Bitcoin ones share the
    # name too, but Bitcoin is named too often that day to link anything on its own.
    bitcoin = [
        "Bitcoin weekly close above $97,000",
        "Bitcoin dominance climbs to 61%",
        "Bitcoin miner adds 5,000 rigs in Texas",
        "Bitcoin slips as traders lock in gains",
        "Spot bitcoin ETFs see record inflows",
    ]
    # A day's worth of other news, so that "often" and "rarely" mean something.
    letters = "bcdfghjklmnprstvz"
    others = [
        f"{letters[n % 17]}a{letters[n // 17]}o{letters[(n * 7) % 17]}i plans {n} new sites"
        for n in range(60)
    ]
    walmart = [
        "Walmart lifts full-year forecast on strong comparable sales",
        "Walmart raises annual outlook as shoppers hunt for deals",
        "Walmart beats and raises; shares hit record",
    ]
    texts = [Text(title) for title in [*walmart, *bitcoin, *others]]
    groups = cluster_texts(texts, Method.LIGHT)
    assert [0, 1, 2] in groups
    assert not any(len(set(group) & set(range(3, 8))) > 1 for group in groups)


def test_the_same_subject_a_day_later_is_a_new_thread() -> None:
    # As the labelled threads have it: GM's recall and, a day on, the inquiry into it.
    start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    first = "Criminal probe in GM's recall of deadly defect"
    second = "Legal heavyweight leads GM internal recall probe"
    for hours, expected in ((1, [[0, 1]]), (30, [[0], [1]])):
        texts = [
            Text(first, published=start),
            Text(second, published=start + dt.timedelta(hours=hours)),
        ]
        assert cluster_texts(texts) == expected, hours


def test_a_story_meets_an_item_as_its_reports_would_one_by_one() -> None:
    # The embedding method scores an item against a story through the story's means: the
    # same figure as the mean of the item's scores with each report, time and names included.
    start = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    titles = [
        "Nvidia beats estimates as data-center sales surge",
        "AMD shares slip after Nvidia results",
        "Fed holds rates steady",
        "Nvidia tops estimates on data-center demand",
        "Nvidia results lift chip stocks",
    ]
    texts = [
        Text(title, published=start + dt.timedelta(hours=5 * n)) for n, title in enumerate(titles)
    ]
    moments = clustering._moments(texts)
    features = clustering._Features.build(texts, Method.EMBEDDING, None, moments)
    groups = [[0, 1, 2], [1, 3]]
    through_means = features.story_similarity([4], groups)
    one_by_one = [features.similarity([4], group).mean() for group in groups]
    assert np.allclose(through_means[0], one_by_one, atol=1e-5)
