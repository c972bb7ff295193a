"""Ranking points on several objectives: non-dominated sorting and crowding distance
(NSGA-II, Deb et al. 2002), and the hypervolume of two objectives (Zitzler & Thiele 1998).

Every function takes points whose coordinates are all to be *maximised* (negate a
minimised objective first, see :func:`to_maximise`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

Point = Sequence[float]


def to_maximise(values: Sequence[float], directions: Sequence[str]) -> tuple[float, ...]:
    """``values`` with every ``"min"``/``"minimize"`` coordinate negated."""
    return tuple(-v if d.startswith("min") else v for v, d in zip(values, directions, strict=True))


def dominates(a: Point, b: Point) -> bool:
    return all(x >= y for x, y in zip(a, b, strict=True)) and any(x > y for x, y in zip(a, b, strict=True))


def nondominated_ranks(points: Sequence[Point]) -> list[int]:
    """Front number of every point: 0 for the Pareto front, 1 for the front once it is
    removed, and so on (Deb et al.'s non-dominated sorting, one dominance matrix)."""
    if len(points) == 0:
        return []
    p = np.asarray(points, dtype=float)
    # dominates[i, j]: i is at least as good as j everywhere and better somewhere
    dominates = np.logical_and(
        (p[:, None, :] >= p[None, :, :]).all(axis=2), (p[:, None, :] > p[None, :, :]).any(axis=2)
    )
    ranks = np.full(len(p), -1)
    remaining = np.ones(len(p), dtype=bool)
    rank = 0
    while remaining.any():
        front = remaining & ~(dominates[remaining][:, :].any(axis=0))
        ranks[front] = rank
        remaining &= ~front
        rank += 1
    return ranks.tolist()


def crowding_distances(points: Sequence[Point]) -> list[float]:
    """NSGA-II's crowding distance of each point within ``points`` (one front): the
    normalised side lengths of the box its neighbours span; the extremes get infinity."""
    n = len(points)
    if n <= 2:
        return [math.inf] * n
    distance = [0.0] * n
    for axis in range(len(points[0])):
        order = sorted(range(n), key=lambda i: points[i][axis])
        low, high = points[order[0]][axis], points[order[-1]][axis]
        distance[order[0]] = distance[order[-1]] = math.inf
        if high == low:
            continue
        for k in range(1, n - 1):
            distance[order[k]] += (points[order[k + 1]][axis] - points[order[k - 1]][axis]) / (high - low)
    return distance


def rank_order(points: Sequence[Point]) -> list[int]:
    """Indices of ``points`` best first: by non-dominated rank, then by crowding distance
    within the front (larger first), then by index (a stable, deterministic order)."""
    ranks = nondominated_ranks(points)
    crowding = [0.0] * len(points)
    for rank in set(ranks):
        members = [i for i, r in enumerate(ranks) if r == rank]
        for i, d in zip(members, crowding_distances([points[i] for i in members]), strict=True):
            crowding[i] = d
    return sorted(range(len(points)), key=lambda i: (ranks[i], -crowding[i], i))


def hypervolume_2d(points: Sequence[Point], reference: Point = (0.0, 0.0)) -> float:
    """Area dominated by ``points`` (two maximised objectives) and bounded below by
    ``reference``; points not above the reference on both axes add nothing."""
    inside = sorted({(x, y) for x, y in points if x > reference[0] and y > reference[1]}, reverse=True)
    area, best_y = 0.0, reference[1]
    for x, y in inside:  # by x descending: each point adds the strip above the best y so far
        if y > best_y:
            area += (x - reference[0]) * (y - best_y)
            best_y = y
    return area
