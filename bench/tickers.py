"""Ticker recognition on two labelled sets, each scored on its own, beside a baseline that
takes every cashtag and every upper-case word that is a known symbol: tests/data/tickers.csv
(headlines we wrote) and tests/data/tickers-real.csv (322 real headlines from feeds the first
did not draw on, labelled before any rule was written for them; see tickers-real.md)."""

from __future__ import annotations

import csv
import re
import time
from pathlib import Path

from digest.tickers import find_tickers, symbol_table

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
SETS = {"ours": DATA / "tickers.csv", "real feeds": DATA / "tickers-real.csv"}


def naive(title: str) -> list[str]:
    known = symbol_table().symbols
    words = re.findall(r"\$?([A-Z][A-Z0-9.]{0,5})\b", title)
    return [word for word in dict.fromkeys(words) if word in known]


def score(rows: list[dict[str, str]], find: object) -> tuple[float, float]:
    true_positives = false_positives = false_negatives = 0
    for row in rows:
        expected = set(row["tickers"].split())
        found = set(find(row["title"]))  # type: ignore[operator]
        true_positives += len(expected & found)
        false_positives += len(found - expected)
        false_negatives += len(expected - found)
    return (
        true_positives / max(1, true_positives + false_positives),
        true_positives / max(1, true_positives + false_negatives),
    )


def main() -> None:
    for name, path in SETS.items():
        rows = list(csv.DictReader(path.read_text(encoding="utf-8").splitlines()))
        started = time.perf_counter()
        precision, recall = score(rows, find_tickers)
        elapsed = time.perf_counter() - started
        base_precision, base_recall = score(rows, naive)
        print(
            f"tickers, {name}: {path.name}, {len(rows)} labelled headlines "
            f"(ours: {len(rows) / elapsed:,.0f} per second)"
        )
        print(
            f"  ours                     precision {precision:.3f}  recall {recall:.3f}"
            "  (goals 0.97, 0.90)"
        )
        print(
            f"  upper-case words (base)  precision {base_precision:.3f}  recall {base_recall:.3f}"
        )


if __name__ == "__main__":
    main()
