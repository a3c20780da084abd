"""Clustering quality on the labelled dev set, and clustering speed.

Quality: B-cubed and pairwise precision, recall and F1 on ../shared/data/story-clusters/
uci-dev.csv (4,305 headlines, 50 gold stories), both methods (light, and embedding when
`make embeddings` has installed it) beside exact normalised-title matching, measured in the
same run. Speed: a daily run of 3,000 headlines, and 50,000.
"""

from __future__ import annotations

import csv
import datetime as dt
import multiprocessing
import re
import resource
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from digest.cluster import Text, cluster_texts
from digest.errors import DigestError
from digest.models import Method

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEV = SHARED / "story-clusters" / "uci-dev.csv"


def bcubed(predicted: Sequence[int], gold: Sequence[str]) -> tuple[float, float, float]:
    by_predicted: defaultdict[int, list[int]] = defaultdict(list)
    by_gold: defaultdict[str, list[int]] = defaultdict(list)
    for index, (p, g) in enumerate(zip(predicted, gold, strict=True)):
        by_predicted[p].append(index)
        by_gold[g].append(index)
    precision = recall = 0.0
    for index in range(len(gold)):
        cluster = by_predicted[predicted[index]]
        shared = sum(1 for other in cluster if gold[other] == gold[index])
        precision += shared / len(cluster)
        recall += shared / len(by_gold[gold[index]])
    precision /= len(gold)
    recall /= len(gold)
    return precision, recall, 2 * precision * recall / (precision + recall)


def pairwise(predicted: Sequence[int], gold: Sequence[str]) -> tuple[float, float, float]:
    def pairs(labels: Sequence[object]) -> int:
        return sum(n * (n - 1) // 2 for n in Counter(labels).values())

    both = pairs(list(zip(predicted, gold, strict=True)))
    precision = both / max(1, pairs(predicted))
    recall = both / max(1, pairs(gold))
    return precision, recall, 2 * precision * recall / max(1e-9, precision + recall)


def labels(groups: list[list[int]], size: int) -> list[int]:
    label = [0] * size
    for number, group in enumerate(groups):
        for index in group:
            label[index] = number
    return label


def exact_title(titles: Sequence[str]) -> list[int]:
    keys: dict[str, int] = {}
    return [keys.setdefault(re.sub(r"\W+", " ", t.lower()).strip(), len(keys)) for t in titles]


def main() -> None:
    with DEV.open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    # Title and time only: what the held-out judge has too. The dev set's timestamps are crawl
    # times a few seconds apart within each story, so anything finer than the 72 h window
    # would be learning the crawler, not the news.
    texts = [
        Text(
            row["TITLE"], published=dt.datetime.fromtimestamp(int(row["TIMESTAMP"]) / 1000, dt.UTC)
        )
        for row in rows
    ]
    titles = [text.title for text in texts]
    gold = [row["STORY"] for row in rows]
    print(f"cluster quality: {DEV.name}, {len(rows)} headlines, {len(set(gold))} gold stories")
    results: list[tuple[str, list[int], float | None]] = []
    for method in Method:
        try:
            started = time.perf_counter()
            groups = cluster_texts(texts, method)
        except DigestError as exc:
            print(f"  {method.value:<24} not measured: {exc}")
            continue
        results.append((method.value, labels(groups, len(texts)), time.perf_counter() - started))
    results.append(("exact title (baseline)", exact_title(titles), None))
    for name, predicted, seconds in results:
        bp, br, bf = bcubed(predicted, gold)
        pp, pr, pf = pairwise(predicted, gold)
        took = f"  {seconds:6.2f} s" if seconds is not None else ""
        print(
            f"  {name:<24} B-cubed P {bp:.3f} R {br:.3f} F1 {bf:.3f}   "
            f"pairwise P {pp:.3f} R {pr:.3f} F1 {pf:.3f}   {len(set(predicted)):4} clusters{took}"
        )
    print("  goal: B-cubed F1 >= 0.82 with precision >= 0.90")
    started = time.perf_counter()
    cluster_texts(texts[:3000])
    daily = time.perf_counter() - started
    print(f"  daily run, 3,000 headlines (light)  {daily:8.2f} s (goal 2 s)")
    # 50,000 headlines: the dev titles again and again, each with a serial word of its own,
    # undated so that all fall in one window (the worst case), in a child process so that a
    # run past the limit can be stopped and reported as such.
    context = multiprocessing.get_context("spawn")
    results_queue = context.Queue()
    worker = context.Process(target=_cluster_many, args=(titles, results_queue))
    worker.start()
    worker.join(LARGE_RUN_LIMIT)
    if worker.is_alive():
        worker.terminate()
        worker.join()
        print(f"  50,000 headlines (light)            did not finish within {LARGE_RUN_LIMIT} s")
        return
    seconds, peak = results_queue.get()
    print(
        f"  50,000 headlines (light)            {seconds:8.2f} s (goal 30 s), "
        f"peak memory {peak:.0f} MB (goal 2 GB)"
    )


#: How long the 50,000-headline run may take before it is stopped (the goal is 30 s).
LARGE_RUN_LIMIT = 60


def _cluster_many(titles: list[str], results: Any) -> None:
    many = [Text(f"{titles[n % len(titles)]} n{n // len(titles)}") for n in range(50_000)]
    started = time.perf_counter()
    cluster_texts(many)
    seconds = time.perf_counter() - started
    results.put((seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


if __name__ == "__main__":
    main()
