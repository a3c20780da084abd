"""Group items that report the same event into stories.

Two methods. The default, ``embedding``, compares headlines by meaning: a sentence embedding
(digest/embedding.py) blended with TF-IDF of words and word parts as a tie-breaker, and a
headline pair naming different tickers or coins ($NVDA vs $AMD) counts as less alike (a
feature, not a veto), and so does a pair further apart in time, by so much a day. Nothing
else: no word lists, so it carries to news it was not tuned on.
The ``light`` method, for installs without the model, uses TF-IDF alone and needs evidence
that a pair is one event:

- more than one word in common, one of them no everyday market word; or a ticker few other
  items name; or strong overlap (a word shared by chance, "near" or "record", is not enough);
- never when the two name different tickers or coins, nor between two generic market wraps
  ("Stocks rise as…", "Bitcoin slips…") without strong overlap.

Both form stories by average linkage, never single link, so one loose pair cannot chain two
stories together, and never across more than ``WINDOW`` of time.

Cost stays bounded as history grows: items are taken in time order, a batch at a time, and a
batch meets only the stories still open (active within ``WINDOW``), each as one node weighted
by its latest reports, so a story keeps its identity while it develops. Pure: no I/O, no clock.

The constants of the embedding method were chosen by leave-one-category-out on the labelled
stories of ../shared/data/story-clusters/ (tune on technology, score on entertainment, and the
reverse); ``python -m bench.clusters`` repeats the protocol and prints both directions.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import scipy.sparse as sparse

from .linkage import average_linkage
from .models import Item, Method
from .tickers import find_tickers

#: Average cosine similarity two groups need to be one story (light method). Headlines are
#: short, so two reports of one event often share only a name and a word or two: on the dev
#: set, 0.1 already splits many stories (B-cubed recall 0.58) while 0.05 keeps precision near
#: 0.86, because the evidence rule, not this bar, is what keeps chance overlaps apart.
MERGE_THRESHOLD = 0.05
# The embedding method's constants were tuned together by leave-one-category-out on the
# labelled stories (../shared/data/story-clusters/) with the sample edition beside each
# tuning category (tests/data/sample-stories.csv, which is finer-grained: one event per story,
# where the dev set's stories are whole threads): bar x share x time decay on a grid, the best
# mean of tuning-category and sample-edition B-cubed F1. Tuned on technology + sample, it
# scores entertainment 0.910 (P 0.964); tuned on entertainment + sample, technology 0.872
# (P 0.983); health 0.936, sample edition 0.945 (P 0.904). Before the time decay, with a
# one-sided name penalty, the same protocol gave 0.882 and 0.745. `python -m bench.clusters`
# repeats this.
#: Average similarity two groups need to be one story (embedding method). Lower bars suit the
#: dev set's coarse threads but merge the sample edition's neighbouring events (0.225:
#: technology 0.87, sample 0.93 at precision 0.87; 0.275: 0.89, 0.945 at 0.90).
EMBEDDING_MERGE_THRESHOLD = 0.275
#: Share of the similarity that comes from the embedding, the rest from TF-IDF (0.6 / 0.8 /
#: 1.0 tried: 0.8 is best on technology + sample; the embedding alone loses 0.01-0.02).
EMBEDDING_SHARE = 0.8
#: Taken off the similarity of two headlines that name tickers or coins, none in common, so
#: "Nvidia beats estimates" and "AMD beats estimates" never link as a pair (groups still may,
#: if the rest of them agree). The dev categories name few companies: under the protocol,
#: 0 / 0.25 / 0.5 / 1.0 score the left-out categories within 0.003 of each other, but 0 lets
#: the sample edition's neighbouring companies merge (0.913 against 0.945), and business news,
#: where two companies report results on one day, needs them kept apart. A penalty for pairs
#: of which only one names a ticker cost technology 0.07 of F1 under the protocol, and is
#: gone: it split threads that name the company in some headlines and not in others.
NAME_CONFLICT = 1.0
#: Taken off the similarity of two headlines a day apart, in proportion to their distance in
#: time: the same subject a day later is more often a new thread (the dev set's Google News
#: threads split Titanfall's launch and its reviews, GM's recall and the inquiry into it, a
#: day apart). 0 / 0.05 / 0.1 / 0.15 / 0.2 / 0.3 tried: 0.3 is best on each tuning category
#: + sample. Larger values were not tried: the dev set's times are those at which each thread
#: was collected (one time per thread), which a steeper decay would exploit, and the sample
#: edition, whose times are real, has stories that run for two days.
TIME_DECAY = 0.3
#: Similarity that is evidence by itself, and that two generic market wraps need: "Stocks
#: rise as yields fall" and "Stocks rise as oil slides" share three words and nothing else.
STRONG_OVERLAP = 0.5
#: Items further apart than this are different stories, and a story no item has joined for
#: this long is closed (the issue's 48-72 h: a developing story rarely pauses for three days).
WINDOW = dt.timedelta(hours=72)
DAY = 86_400.0
#: Items clustered together in one dense pass. The cost of a pass grows with its square; at
#: 2,500 the matrices of a pass stay near 100 MB, and the stories a pass leaves open carry
#: into the next, so the split costs little quality (dev set: B-cubed F1 0.79 either way).
BATCH_SIZE = 2500
#: Open stories a batch meets, the most recently active first: bounds the matrix when a long
#: undated history leaves every story open.
MAX_OPEN_STORIES = 1000
#: A ticker named by at most this share of the items links two headlines by itself; one
#: named more often (Bitcoin on a busy day) needs a shared word besides.
RARE_NAME_SHARE = 0.05
#: A story meets a new batch through this many of its latest reports: enough to know it,
#: few enough that a long-running story costs no more than a short one, and free to drift.
STORY_MEMORY = 20
#: Summary words count for less than title words: summaries wander off topic.
SUMMARY_WEIGHT = 0.4
SUMMARY_WORDS = 30
CHAR_GRAMS = (3, 4, 5)


@dataclass(frozen=True, slots=True)
class Text:
    """What the clusterer reads of one item."""

    title: str
    summary: str = ""
    published: dt.datetime | None = None


_TOKEN = re.compile(r"\$?[a-z0-9]+(?:[.'][a-z0-9]+)*")
_WORD = re.compile(r"[^\W_]+(?:['’.&-][^\W_]+)*")
_STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers him his how i if in into is it its itself just
    me more most my no nor not now of off on once only or other our out over own same she should
    so some such than that the their them then there these they this those through to too under
    until up very was we were what when where which while who whom why will with would you your
    says said say new news report reports update live today amid week""".split()
)
#: A headline about the market as a whole: a market, index or benchmark asset as subject and a
#: move as verb, within the first few words ("US stocks rise as…", "Bitcoin slips below…").
_GENERIC = re.compile(
    r"^(?:(?:us|u\.s\.|american|asian?|european?|global|world|emerging|japan(?:ese)?|"
    r"chin(?:a|ese)|hong\s+kong|india[n]?|uk|british|london|german|french|tech|bank|chip|"
    r"crypto|small-cap|wall\s+street)\s+)*(?:stocks?|shares|equities|markets?|futures|indexes|indices|dow|"
    r"nasdaq|s&p(?:\s*500)?|ftse|nikkei|dax|treasur(?:y|ies)|yields?|bonds?|dollar|gold|oil|"
    r"crude|bitcoin|btc|ether|ethereum|crypto(?:currenc(?:y|ies)|s)?|wall\s+street)\s+"
    r"(?:\w+\s+)?(?:rise|rises|rose|gain|gains|climb|climbs|rally|rallies|jump|jumps|surge|"
    r"surges|soar|soars|fall|falls|fell|drop|drops|slip|slips|slide|slides|sink|sinks|tumble|"
    r"tumbles|retreat|retreats|edge|edges|dip|dips|steady|steadies|mixed|flat|extend|extends|"
    r"hit|hits|end|ends|close|closes|open|opens)\b",
    re.IGNORECASE,
)


def tokens(text: str) -> list[str]:
    """Lower-cased, lightly stemmed words of ``text`` without stopwords."""
    words = []
    for raw in _TOKEN.findall(text.lower()):
        word = raw.lstrip("$").replace("'s", "")
        if word in _STOPWORDS or len(word) < 2 or not word.strip("0"):
            continue
        words.append(_stem(word))
    return words


@lru_cache(maxsize=1 << 16)  # a day's headlines repeat their words many times over
def _stem(word: str) -> str:
    # Just enough to make "rates"/"rate" and "surges"/"surged"/"surging" meet.
    for suffix, keep in (("ing", 4), ("ies", 3), ("ed", 4), ("es", 4), ("s", 3)):
        if word.endswith(suffix) and len(word) - len(suffix) >= keep:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


#: Everyday words of market news (stemmed as ``tokens`` stems them): two headlines sharing
#: only these ("hits record", "shares rise") are not thereby about one event.
COMMON_WORDS = frozenset(
    _stem(word)
    for word in """record high low hit hits rise rises rose fall falls fell gain gains drop drops
    slip slips slide slides jump jumps surge surges climb climbs rally rallies sink sinks tumble
    steady steadies ease eases edge edges dip dips soar soars plunge plunges rebound rebounds
    shares share stock stocks market markets price prices trading trade traders investors
    deal deals plan plans launch launches launched unveils unveil new first biggest largest top
    year years month months week weeks day days quarter quarterly annual daily today time
    million billion trillion percent pct points point us u.s global world near ahead amid
    after before over under above below against more less than most least big small key
    says said report reports sees see set sets back off out up down higher lower close closes
    open opens end ends data rate rates cut cuts growth sales revenue profit earnings results
    forecast outlook expected expects estimates analysts ceo chief company firm firms group
    could may might would will what why how who""".split()
)


def is_generic(title: str) -> bool:
    """True for a market wrap: the market or a benchmark moving, no company in particular."""
    return bool(_GENERIC.search(title.strip()))


def cluster_texts(
    texts: Sequence[Text],
    method: Method = Method.EMBEDDING,
    vectors: npt.NDArray[np.float32] | None = None,
) -> list[list[int]]:
    """Group ``texts`` into stories; each group lists indices, groups in input order.

    ``vectors`` are the titles' embeddings when the caller has them already (one row per
    text, as ``embedding.embed`` makes them); otherwise the embedding method computes them.
    """
    if not texts:
        return []
    moments = _moments(texts)
    features = _Features.build(texts, method, vectors, moments)
    order = sorted(range(len(texts)), key=lambda index: moments[index])
    stories: list[_Story] = []
    for start in range(0, len(order), BATCH_SIZE):
        batch = order[start : start + BATCH_SIZE]
        open_stories = _open(stories, moments[batch[0]])
        for story, group in _cluster_batch(features, batch, open_stories, moments):
            if story is None:
                story = _Story()
                stories.append(story)
            story.members.extend(group)
            story.last = max(story.last, max(moments[index] for index in group))
    groups = [sorted(story.members) for story in stories]
    return sorted(groups, key=lambda group: group[0])


def cluster_items(
    items: Sequence[Item],
    method: Method = Method.EMBEDDING,
    vectors: npt.NDArray[np.float32] | None = None,
) -> list[list[Item]]:
    """Group ``items`` into stories, each a list of items about one event."""
    texts = [Text(item.title, item.summary_text, item.published) for item in items]
    groups = cluster_texts(texts, method, vectors)
    return [[items[index] for index in group] for group in groups]


@dataclass(slots=True)
class _Story:
    members: list[int] = field(default_factory=list)
    last: float = -math.inf


@dataclass(frozen=True, slots=True)
class _Features:
    tfidf: sparse.csr_matrix
    embedding: npt.NDArray[np.float32] | None
    #: One row per item, one column per symbol: 1 where the headline names the symbol.
    symbols: sparse.csr_matrix
    #: One row per item, one column per title word: 1 where the title has the word.
    words: sparse.csr_matrix
    #: The same without everyday market words (COMMON_WORDS).
    distinct: sparse.csr_matrix
    #: The symbol columns that at most RARE_NAME_SHARE of the items name.
    rare_symbols: sparse.csr_matrix
    generic: list[bool]
    #: Each item's time, seconds since the epoch (``_moments``).
    moments: npt.NDArray[np.float64]

    @classmethod
    def build(
        cls,
        texts: Sequence[Text],
        method: Method,
        vectors: npt.NDArray[np.float32] | None,
        moments: Sequence[float],
    ) -> _Features:
        embedding = None
        if method is Method.EMBEDDING:
            if vectors is None:
                from .embedding import embed  # the model: loaded only when asked for

                vectors = embed([text.title for text in texts])
            embedding = np.asarray(vectors, dtype=np.float32)
        symbols = _count_matrix([Counter(find_tickers(text.title)) for text in texts])
        symbols = symbols.astype(np.float32)
        if embedding is not None:
            # The evidence rule's features: the light method's alone.
            empty = sparse.csr_matrix((len(texts), 0), dtype=np.float32)
            times = np.array(moments, dtype=np.float64)
            return cls(_tfidf(texts), embedding, symbols, empty, empty, empty, [], times)
        frequency = np.bincount(symbols.indices, minlength=symbols.shape[1])
        rare = np.flatnonzero(frequency <= max(2, RARE_NAME_SHARE * len(texts)))
        title_words = [tokens(text.title) for text in texts]
        return cls(
            tfidf=_tfidf(texts),
            embedding=embedding,
            symbols=symbols,
            words=_binary(title_words),
            distinct=_binary([[w for w in ws if w not in COMMON_WORDS] for ws in title_words]),
            rare_symbols=symbols[:, rare].tocsr(),
            generic=[is_generic(text.title) for text in texts],
            moments=np.array(moments, dtype=np.float64),
        )

    @property
    def threshold(self) -> float:
        return MERGE_THRESHOLD if self.embedding is None else EMBEDDING_MERGE_THRESHOLD

    def similarity(self, rows: list[int], columns: list[int]) -> npt.NDArray[np.float32]:
        """Similarity of each row item with each column item, as the method defines it."""
        values = np.asarray((self.tfidf[rows] @ self.tfidf[columns].T).toarray(), np.float32)
        if self.embedding is not None:
            # In place and in single precision: a batch meeting many open stories makes
            # matrices of tens of millions of pairs.
            values *= np.float32(1 - EMBEDDING_SHARE)
            meaning = self.embedding[rows] @ self.embedding[columns].T
            meaning *= np.float32(EMBEDDING_SHARE)
            values += meaning
            del meaning
            values[self._conflicts(rows, columns)] -= np.float32(NAME_CONFLICT)
            # Days from the earliest item, in single precision: a matrix of pairs at a time.
            days = ((self.moments - self.moments.min()) / DAY).astype(np.float32)
            apart = np.subtract.outer(days[rows], days[columns])
            np.abs(apart, out=apart)
            apart *= np.float32(TIME_DECAY)
            values -= apart
            return values
        values[~self._related(rows, columns, values)] = 0.0
        return values

    def story_similarity(self, rows: list[int], groups: list[list[int]]) -> npt.NDArray[np.float32]:
        """The embedding method's mean similarity of each row item with each group's items.

        The same figures as averaging ``similarity`` over each group, computed through each
        group's mean vectors, name counts and times, so the cost grows with the groups, not
        with their reports. (Each group's reports are older than the rows: items are taken in
        time order, so the mean distance in time is the distance to the group's mean time.)
        """
        members = [index for group in groups for index in group]
        membership = _membership(groups, len(members))
        sizes = np.array([len(group) for group in groups], dtype=np.float32)
        assert self.embedding is not None
        # Sums over each group's reports; divided by the group's size at the end.
        meaning = self.embedding[rows] @ np.asarray(membership @ self.embedding[members]).T
        words = (self.tfidf[rows] @ (membership @ self.tfidf[members]).T).toarray()
        values = EMBEDDING_SHARE * meaning + (1 - EMBEDDING_SHARE) * words
        left, right = self.symbols[rows], self.symbols[members]
        named_left = (left.getnnz(axis=1) > 0).astype(np.float32)
        named_right = (right.getnnz(axis=1) > 0).astype(np.float32)
        named_in_group = membership @ named_right
        shared = (left @ right.T).tocsr()
        shared.data[:] = 1.0
        sharing_in_group = (shared @ membership.T).toarray()
        conflicts = named_left[:, None] * (named_in_group[None, :] - sharing_in_group)
        values -= NAME_CONFLICT * conflicts
        values /= sizes
        mean_time = (membership @ self.moments[members]) / sizes
        apart = np.abs(self.moments[rows][:, None] - mean_time[None, :])
        values -= TIME_DECAY / DAY * apart
        return np.asarray(values, dtype=np.float32)

    def _conflicts(self, rows: list[int], columns: list[int]) -> npt.NDArray[np.bool_]:
        """Pairs that both name tickers or coins, none of them in common."""
        left_names, right_names = self.symbols[rows], self.symbols[columns]
        named_left = np.flatnonzero(left_names.getnnz(axis=1) > 0)
        named_right = np.flatnonzero(right_names.getnnz(axis=1) > 0)
        conflict = np.zeros((len(rows), len(columns)), dtype=bool)
        # Only the items that name something can conflict: a product over those alone.
        shared = (left_names[named_left] @ right_names[named_right].T).toarray() > 0
        conflict[np.ix_(named_left, named_right)] = ~shared
        return conflict

    def _related(
        self,
        rows: list[int],
        columns: list[int],
        similarity: npt.NDArray[np.float32],
    ) -> npt.NDArray[np.bool_]:
        """Which pairs may count their similarity at all.

        A pair needs more than one word in common, one of them no everyday market word, or a
        ticker few other items name (Walmart, not Bitcoin on a busy crypto day), or strong
        overlap: "Gold steadies near $2,650" and "Near Protocol ships sharding" share a
        word and nothing else; "Rupee hits record low" and "Filecoin deals hit record" share
        only everyday words. Two headlines naming different tickers are unrelated, and so are
        two generic market wraps without strong overlap.
        """
        strong = similarity >= STRONG_OVERLAP
        shared_words = (self.words[rows] @ self.words[columns].T).toarray()
        shared_distinct = (self.distinct[rows] @ self.distinct[columns].T).toarray()
        conflict = self._conflicts(rows, columns)
        generic_left = np.array([self.generic[index] for index in rows], dtype=bool)
        generic_right = np.array([self.generic[index] for index in columns], dtype=bool)
        wraps = generic_left[:, None] & generic_right[None, :]
        rare = self.rare_symbols
        shared_rare_names = (rare[rows] @ rare[columns].T).toarray() > 0
        evidence = ((shared_words >= 2) & (shared_distinct >= 1)) | shared_rare_names | strong
        return np.asarray(evidence & ~conflict & (strong | ~wraps), dtype=bool)


def _cluster_batch(
    features: _Features, batch: list[int], stories: list[_Story], moments: list[float]
) -> list[tuple[_Story | None, list[int]]]:
    """Cluster one batch of items with the open stories; each story absorbs at most a group.

    A story takes part through its most recent STORY_MEMORY reports: what it is about now.
    """
    count = len(batch)
    recent = [story.members[-STORY_MEMORY:] for story in stories]
    with_embedding = features.embedding is not None
    # The embedding method's score is linear in each report, so a batch meets a story through
    # the story's mean (one column, not twenty); the light method's evidence rule is not.
    columns = batch if with_embedding else batch + [i for members in recent for i in members]
    similarity = features.similarity(batch, columns)
    distance = np.full((count + len(stories),) * 2, np.inf, dtype=np.float32)
    # Stories already told apart stay apart (their block stays infinite).
    np.subtract(1.0, similarity[:, :count], out=distance[:count, :count])
    times = np.array([moments[index] for index in batch])
    window = WINDOW.total_seconds()
    if times.max() - times.min() > window:
        distance[:count, :count][np.abs(times[:, None] - times[None, :]) > window] = np.inf
    if stories:
        if with_embedding:
            average = features.story_similarity(batch, recent)
        else:
            sizes = np.array([len(members) for members in recent], dtype=np.float32)
            membership = _membership(recent, len(columns) - count)
            average = np.asarray(similarity[:, count:] @ membership.T / sizes, np.float32)
        with_stories = 1.0 - average
        lasts = np.array([story.last for story in stories])
        with_stories[(times[:, None] - lasts[None, :]) > window] = np.inf
        distance[:count, count:] = with_stories
        distance[count:, :count] = with_stories.T
    weights = np.array([1.0] * count + [len(members) for members in recent])
    result: list[tuple[_Story | None, list[int]]] = []
    for group in average_linkage(distance, weights, 1.0 - features.threshold):
        story = next((stories[node - count] for node in group if node >= count), None)
        result.append((story, [batch[node] for node in group if node < count]))
    return [(story, items) for story, items in result if items]


def _membership(groups: list[list[int]], width: int) -> sparse.csr_matrix:
    """One row per group, one column per position in the groups laid end to end: 1 where the
    position belongs to the group."""
    rows = [row for row, group in enumerate(groups) for _ in group]
    return sparse.csr_matrix(
        (np.ones(len(rows), dtype=np.float32), (rows, np.arange(len(rows)))),
        shape=(len(groups), width),
    )


def _open(stories: list[_Story], moment: float) -> list[_Story]:
    """Stories active within the window before ``moment``, at most MAX_OPEN_STORIES."""
    recent = [story for story in stories if moment - story.last <= WINDOW.total_seconds()]
    recent.sort(key=lambda story: story.last)
    return recent[-MAX_OPEN_STORIES:]


def _moments(texts: Sequence[Text]) -> list[float]:
    """Seconds since the epoch; an undated item takes the date of the one before it."""
    moments = []
    last = 0.0
    for text in texts:
        if text.published is not None:
            last = text.published.timestamp()
        moments.append(last)
    return moments


def _tfidf(texts: Sequence[Text]) -> sparse.csr_matrix:
    """Word and character n-gram TF-IDF, each part unit length, then the whole unit length."""
    word_counts = []
    for text in texts:
        counts: defaultdict[str, float] = defaultdict(float)
        for word in tokens(text.title):
            counts[word] += 1.0
        for word in tokens(text.summary)[:SUMMARY_WORDS]:
            counts[word] += SUMMARY_WEIGHT
        word_counts.append(counts)
    words = _weigh(_count_matrix(word_counts))
    # Character n-grams of each distinct word once, then summed per title by one product.
    raw_words = [Counter(_WORD.findall(text.title.lower())) for text in texts]
    title_words, vocabulary = _count_matrix_with_vocabulary(raw_words)
    gram_counts = [Counter(_char_grams(word)) for word in vocabulary]
    grams = _count_matrix(gram_counts)
    characters = _weigh((title_words @ grams).tocsr())
    # Single precision: half the memory traffic in the similarity products, ample accuracy.
    return _normalise(sparse.hstack([words, characters]).tocsr()).astype(np.float32)


def _char_grams(word: str) -> list[str]:
    padded = f" {word} "
    grams = [padded[at : at + n] for n in CHAR_GRAMS for at in range(len(padded) - n + 1)]
    return grams or [padded]


def _binary(rows: list[list[str]]) -> sparse.csr_matrix:
    """One row per list, one column per word of any list (the same columns for equal inputs)."""
    vocabulary = sorted({word for row in rows for word in row})
    column = {word: number for number, word in enumerate(vocabulary)}
    indptr = [0]
    indices: list[int] = []
    for row in rows:
        indices.extend(sorted({column[word] for word in row}))
        indptr.append(len(indices))
    return sparse.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), indices, indptr),
        shape=(len(rows), len(vocabulary)),
    )


def _count_matrix(rows: Sequence[Mapping[str, float]]) -> sparse.csr_matrix:
    return _count_matrix_with_vocabulary(rows)[0]


def _count_matrix_with_vocabulary(
    rows: Sequence[Mapping[str, float]],
) -> tuple[sparse.csr_matrix, list[str]]:
    vocabulary: dict[str, int] = {}
    indptr = [0]
    columns: list[int] = []
    values: list[float] = []
    for counts in rows:
        for term, count in counts.items():
            columns.append(vocabulary.setdefault(term, len(vocabulary)))
            values.append(count)
        indptr.append(len(columns))
    matrix = sparse.csr_matrix(
        (np.array(values, dtype=np.float64), np.array(columns, dtype=np.int64), indptr),
        shape=(len(rows), len(vocabulary)),
    )
    return matrix, list(vocabulary)


def _weigh(counts: sparse.csr_matrix) -> sparse.csr_matrix:
    """Sublinear term frequency times smoothed inverse document frequency, rows unit length."""
    weighted = counts.copy()
    weighted.data = 1.0 + np.log(np.maximum(weighted.data, 1e-12))
    weighted.data[counts.data < 1.0] = counts.data[counts.data < 1.0]  # summary-only words
    documents = weighted.shape[0]
    frequency = np.bincount(weighted.indices, minlength=weighted.shape[1])
    idf = np.log((1.0 + documents) / (1.0 + frequency)) + 1.0
    weighted = weighted @ sparse.diags(idf)
    return _normalise(weighted.tocsr())


def _normalise(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return (sparse.diags(1.0 / norms) @ matrix).tocsr()
