"""Average-linkage agglomerative clustering, cut at a distance, on a dense distance matrix.

The nearest-neighbour-chain algorithm (Murtagh 1983): O(m²) time and one m×m matrix, which
is what lets a batch of a few thousand headlines cluster in well under a second. Nodes may
start with a weight (a story already holding several items counts as that many items), and an
infinite distance is a cannot-link: average linkage keeps it infinite through every merge, so
two nodes kept apart never end up in one group. Pure: no I/O.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def average_linkage(
    distance: npt.NDArray[np.float32], weights: npt.NDArray[np.float32], cut: float
) -> list[list[int]]:
    """Groups of node indices whose average pairwise distance stays at or below ``cut``.

    ``distance`` is square and symmetric and is overwritten; ``weights`` are the node sizes.
    Groups come back sorted, each by its smallest index.
    """
    size = len(weights)
    members: list[list[int] | None] = [[node] for node in range(size)]
    weight = weights.astype(np.float32).copy()
    np.fill_diagonal(distance, np.inf)
    # Infinite at the nodes merged away or finished, added to each row read: cheaper than
    # writing infinity down their columns, which are strided in memory.
    gone = np.zeros(size, dtype=distance.dtype)
    live = set(range(size))
    chain: list[int] = []
    while live or chain:
        if not chain:
            chain.append(next(iter(live)))
        node = chain[-1]
        row = distance[node] + gone
        nearest = int(np.argmin(row))
        # Prefer the previous link on ties, or the chain could cycle.
        if len(chain) > 1 and row[chain[-2]] <= row[nearest]:
            nearest = chain[-2]
        if not row[nearest] <= cut:
            # Every distance of this node is above the cut, and averaging with others can only
            # keep it there: it is finished.
            gone[node] = np.inf
            live.discard(node)
            chain.pop()
            continue
        if len(chain) > 1 and nearest == chain[-2]:
            chain.pop()
            chain.pop()
            _merge(distance, weight, members, node, nearest)
            gone[nearest] = np.inf
            live.discard(nearest)
        else:
            chain.append(nearest)
    groups = [group for group in members if group is not None]
    return sorted((sorted(group) for group in groups), key=lambda group: group[0])


def _merge(
    distance: npt.NDArray[np.float32],
    weight: npt.NDArray[np.float32],
    members: list[list[int] | None],
    into: int,
    other: int,
) -> None:
    # Lance-Williams for average linkage: the size-weighted mean of the two rows.
    total = weight[into] + weight[other]
    merged = (weight[into] * distance[into] + weight[other] * distance[other]) / total
    distance[into] = merged
    distance[:, into] = merged
    distance[into, into] = np.inf
    weight[into] = total
    kept = members[into]
    absorbed = members[other]
    assert kept is not None and absorbed is not None
    kept.extend(absorbed)
    members[other] = None
