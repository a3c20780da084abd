from __future__ import annotations

from digest.cluster import cluster_items, cluster_texts, tokens

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
