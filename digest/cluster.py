"""Group items that report the same event into stories.

Titles (and the first words of summaries) become TF-IDF vectors over normalised tokens;
items are merged by average linkage, never single link, so one loose pair cannot chain two
stories together. Pure: no I/O, no clock.
"""

from __future__ import annotations

import heapq
import math
import re
from collections import Counter, defaultdict
from collections.abc import Sequence

from .models import Item

#: Average cosine similarity two groups need to be one story. Below 0.3, different stories
#: about one company start to merge; above 0.4, the same story in other words splits.
MERGE_THRESHOLD = 0.33
#: Summary words count for less than title words: summaries wander off topic.
SUMMARY_WEIGHT = 0.4
#: Words in more than this share of items (and more than MIN_COMMON_COUNT) propose no pairs:
#: "stocks" or "bitcoin" alone says nothing about which story an item is.
MAX_DOCUMENT_SHARE = 0.05
MIN_COMMON_COUNT = 20

_TOKEN = re.compile(r"\$?[a-z0-9]+(?:[.'][a-z0-9]+)*")
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our out over own same she should
    so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    says said say new news report reports update live today amid week""".split()
)


def tokens(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words of ``text`` without stopwords."""
    words = []
    for raw in _TOKEN.findall(text.lower()):
        word = raw.lstrip("$").replace("'s", "")
        if word in _STOPWORDS or len(word) < 2:
            continue
        words.append(_stem(word))
    return words


def _stem(word: str) -> str:
    # Just enough to make "rates"/"rate" and "surges"/"surged"/"surging" meet.
    for suffix, keep in (("ing", 4), ("ies", 3), ("ed", 4), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def _vectors(texts: Sequence[tuple[str, str]]) -> list[dict[str, float]]:
    bags = []
    for title, summary in texts:
        bag: defaultdict[str, float] = defaultdict(float)
        for word in tokens(title):
            bag[word] += 1.0
        for word in tokens(summary)[:30]:
            bag[word] += SUMMARY_WEIGHT
        bags.append(bag)
    document_frequency: Counter[str] = Counter()
    for bag in bags:
        document_frequency.update(bag.keys())
    count = len(bags)
    vectors = []
    for bag in bags:
        vector = {
            word: weight * math.log((1 + count) / (1 + document_frequency[word])) + weight
            for word, weight in bag.items()
        }
        norm = math.sqrt(sum(value * value for value in vector.values())) or 1.0
        vectors.append({word: value / norm for word, value in vector.items()})
    return vectors


def _similarities(vectors: list[dict[str, float]]) -> dict[tuple[int, int], float]:
    """Cosine similarity of every pair sharing a distinctive word (others count as 0).

    Only distinctive words propose pairs, which keeps this near-linear; a proposed pair's
    similarity is then its full cosine.
    """
    postings: defaultdict[str, list[int]] = defaultdict(list)
    for index, vector in enumerate(vectors):
        for word in vector:
            postings[word].append(index)
    too_common = max(MIN_COMMON_COUNT, int(len(vectors) * MAX_DOCUMENT_SHARE))
    pairs: set[tuple[int, int]] = set()
    for members in postings.values():
        if len(members) <= too_common:
            pairs.update(
                (left, right)
                for position, left in enumerate(members)
                for right in members[position + 1 :]
            )
    similarity = {}
    for left, right in pairs:
        small, large = sorted((vectors[left], vectors[right]), key=len)
        value = sum(weight * large.get(word, 0.0) for word, weight in small.items())
        if value > 0:
            similarity[left, right] = value
    return similarity


def cluster_texts(texts: Sequence[tuple[str, str]]) -> list[list[int]]:
    """Group ``(title, summary)`` pairs; each group lists indices, groups in input order."""
    vectors = _vectors(texts)
    similarity = _similarities(vectors)
    members: dict[int, list[int]] = {index: [index] for index in range(len(texts))}
    # Sum of pairwise similarities between two live groups; average = sum / (|a| * |b|).
    between: defaultdict[int, dict[int, float]] = defaultdict(dict)
    for (left, right), value in similarity.items():
        between[left][right] = value
        between[right][left] = value
    heap = [(-value, left, right) for (left, right), value in similarity.items()]
    heapq.heapify(heap)
    while heap:
        negative, left, right = heapq.heappop(heap)
        if left not in members or right not in members:
            continue
        average = between[left].get(right, 0.0) / (len(members[left]) * len(members[right]))
        if abs(average + negative) > 1e-12:
            continue  # stale entry: the pair's average changed since it was pushed
        if average < MERGE_THRESHOLD:
            break
        # Merge right into left and update the sums to every neighbour of either.
        members[left].extend(members.pop(right))
        right_links = between.pop(right)
        right_links.pop(left, None)
        between[left].pop(right, None)
        for other, value in right_links.items():
            between[other].pop(right, None)
            total = between[left].get(other, 0.0) + value
            between[left][other] = total
            between[other][left] = total
        for other, total in between[left].items():
            size = len(members[left]) * len(members[other])
            heapq.heappush(heap, (-total / size, min(left, other), max(left, other)))
    return sorted((sorted(group) for group in members.values()), key=lambda group: group[0])


def cluster_items(items: Sequence[Item]) -> list[list[Item]]:
    """Group ``items`` into stories, each a list of items about one event."""
    groups = cluster_texts([(item.title, item.summary_text) for item in items])
    return [[items[index] for index in group] for group in groups]
