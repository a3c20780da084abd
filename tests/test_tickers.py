"""Tickers and coins, measured on a labelled set of headlines we wrote (tests/data/tickers.csv)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from digest.models import Section
from digest.rank import story_section, story_tickers
from digest.tickers import AMBIGUOUS, find_tickers, symbol_table

from .conftest import REPO, invoke_cli
from .factories import make_item

LABELLED = REPO / "tests" / "data" / "tickers.csv"


#: The second set: real headlines from feeds the first did not draw on (tickers-real.md).
REAL = REPO / "tests" / "data" / "tickers-real.csv"


def labelled(path: Path = LABELLED) -> list[dict[str, str]]:
    return list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))


@pytest.mark.parametrize("path", [LABELLED, REAL], ids=["ours", "real-feeds"])
def test_labelled_set_precision_and_recall(path: Path) -> None:
    rows = labelled(path)
    assert len(rows) >= 300
    true_positives = false_positives = false_negatives = 0
    for row in rows:
        expected = set(row["tickers"].split())
        found = set(find_tickers(row["title"]))
        true_positives += len(expected & found)
        false_positives += len(found - expected)
        false_negatives += len(expected - found)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / (true_positives + false_negatives)
    assert precision >= 0.97, precision
    assert recall >= 0.90, recall


def test_the_table_covers_the_indexes_and_the_largest_coins() -> None:
    table = symbol_table()
    stocks = [s for s in table.symbols.values() if s.kind == "stock"]
    coins = [s for s in table.symbols.values() if s.kind == "coin"]
    assert len(stocks) >= 500 and len(coins) >= 100
    for symbol in ("NVDA", "AAPL", "BRK.B", "GOOGL", "ASML", "BTC", "ETH", "SOL", "LINK"):
        assert symbol in table.symbols


@pytest.mark.parametrize(
    ("headline", "expected"),
    [
        ("$NVDA and $AAPL lead; $100 billion in volume", ["NVDA", "AAPL"]),
        ("Berkshire (NYSE:BRK.B) trims stake", ["BRK.B"]),
        ("Shares of XYZ Corp (NASDAQ: ZZZZ) debut", ["ZZZZ"]),
        ("Bitcoin Cash and Bitcoin rally; Ethereum Classic slips", ["BCH", "BTC", "ETC"]),
        ("It is now all or one for the market", []),
        ("LINK and SOL trade flat", []),
        ("$LINK and $SOL trade flat", ["LINK", "SOL"]),
        ("Chainlink and Solana trade flat", ["LINK", "SOL"]),
        ("STOCKS RISE AS NOW AND ALL GAIN", []),
        ("BTC ETH XRP rally", ["BTC", "ETH", "XRP"]),
    ],
)
def test_hard_cases(headline: str, expected: list[str]) -> None:
    assert find_tickers(headline) == expected


@pytest.mark.parametrize(
    ("headline", "expected"),
    [
        # Another capitalisation: a name with a shape of its own, or a headline in capitals.
        ("Blackrock and Paypal lead the Youtube deal", ["BLK", "PYPL", "GOOGL"]),
        ("APPLE AND NVIDIA SLIDE AT THE OPEN", ["AAPL", "NVDA"]),
        # ...but a plain name in lower case is the word.
        ("How to bake an apple pie with a target of one hour", []),
        # Brands and short forms name their issuer.
        ("Android 16 rolls out; Windows 11 and Xbox get updates", ["GOOGL", "MSFT"]),
        ("CNN sale weighed as Fox News hires strategist", ["WBD", "FOXA"]),
        # Possessives (straight or curly) and glued prefixes.
        ("Moody’s proposes stablecoin ratings", ["MCO"]),
        ("BitMine's Tom Lee backs bitcoin", ["BMNR", "BTC"]),
        ("DOJ could seek sale before AT&T-Time Warner merger", ["T", "WBD"]),
        ("ex-Google engineer joins pro-Tesla fund", ["GOOGL", "TSLA"]),
        # Coins in the plural; a company is never plural ("Apples").
        ("Miner sells 500 bitcoins and 2 million Dogecoins", ["BTC", "DOGE"]),
        ("Apples and oranges", []),
        # Everyday words as names count only in a headline about crypto.
        ("Strategy buys another 5,500 bitcoin", ["MSTR", "BTC"]),
        ("Ripple, Circle and BitGo win charters", ["XRP", "CRCL"]),
        ("Our strategy for the year: Circle the wagons", []),
        ("Strategy shifts as retailer closes stores", []),
        # A cashtag spelling a currency is no ticker by itself; the company's name is.
        ("$COP slides as Colombia's central bank cuts rates", []),
        ("ConocoPhillips ($COP) raises its dividend", ["COP"]),
        # A short form written in mixed case, and the older spellings of a name.
        ("AmEx and Wal-Mart report; Hewlett-Packard cuts jobs", ["AXP", "WMT", "HPQ"]),
        # Large companies listed abroad, by their US listing.
        ("Toyota and Sony lead Tokyo; HSBC and Barclays fall", ["TM", "SONY", "HSBC", "BCS"]),
        # The longer name wins: Time Warner Cable is not Time Warner, GE Vernova not GE.
        ("Comcast agrees to buy Time Warner Cable", ["CMCSA", "CHTR"]),
        ("GE Vernova rises while GE slips", ["GEV", "GE"]),
        # A misspelt coin.
        ("Etherium price jumps", ["ETH"]),
        # Symbols that are words stay words when written bare.
        ("SNAP benefits and the RACE for SPOT prices", []),
    ],
)
def test_names_as_headlines_write_them(headline: str, expected: list[str]) -> None:
    assert find_tickers(headline) == expected


def test_words_that_are_symbols_need_a_strong_signal() -> None:
    for word in ("ALL", "ONE", "LINK", "SOL", "IT", "A", "ARE", "NOW", "COIN"):
        assert word in AMBIGUOUS
        assert find_tickers(f"Traders say {word} matters today") == []


def test_tickers_decide_the_section() -> None:
    coin = make_item("Bitcoin slips below $98,000", "Market Wire")
    stock = make_item("Nvidia beats estimates", "Coin Bulletin")
    macro = make_item("Oil falls 3% as OPEC+ signals output increase", "Coin Bulletin")
    other = make_item("Regulator opens consultation on disclosures", "Coin Bulletin")
    for item, section in (
        (coin, Section.CRYPTO),
        (stock, Section.STOCKS),
        (macro, Section.MARKETS),
        (other, Section.STOCKS),
    ):
        assert story_section([item], item, story_tickers([item])) is section


def test_story_tickers_count_each_item_once() -> None:
    items = [
        make_item("Nvidia beats; NVDA up", "A", summary="Nvidia and AMD"),
        make_item("Nvidia earnings", "B"),
        make_item("AMD slides", "C"),
    ]
    assert story_tickers(items) == ("NVDA", "AMD")


def test_one_outlet_aside_does_not_tag_a_story() -> None:
    items = [
        make_item("Fed minutes show officials split on rate cuts", "A", weight=1.3),
        make_item("Fed officials divided over cuts", "B"),
        make_item("Fed minutes: policymakers split", "C"),
        make_item("Bitcoin dips as Fed minutes reveal split", "D"),
    ]
    tickers = story_tickers(items)
    assert tickers == ()
    assert story_section(items, items[0], tickers) is Section.MARKETS


def test_tickers_command_writes_symbols_per_headline(tmp_path: Path) -> None:
    source = tmp_path / "headlines.csv"
    source.write_text(
        "id,title,summary\n1,Nvidia beats,Shares of AMD fell\n2,Stocks rise,\n", encoding="utf-8"
    )
    output = tmp_path / "tickers.csv"
    code, out = invoke_cli(
        tmp_path / "unused.yaml", "tickers", "--input", str(source), "--output", str(output)
    )
    assert code == 0, out
    assert output.read_text(encoding="utf-8") == "id,tickers\n1,NVDA AMD\n2,\n"
