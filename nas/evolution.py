"""Evolutionary search over a ChoiceSpace: aging (regularised) evolution for one objective under
constraints, and NSGA-II for a Pareto front of several.

A strategy only needs the space's sample / mutate / crossover. Objectives and constraints are
batch functions of choices ([N, dimensions] option indices -> [N] values), so the cheap ones
(latency from latency_models.batch, MACs, params) score thousands of candidates per call; a
constraint is a filter composed around the strategy (`Budget`), never code inside it.
Candidates are deduplicated on their canonical choices, which determine the network. The same
seed gives the same search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from search_spaces.space import Choices, ChoiceSpace

BatchFn = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Budget:
    """Feasible when `metric(choices) <= limit` (e.g. predicted latency <= 20 ms)."""

    name: str
    metric: BatchFn
    limit: float

    def __call__(self, choices: np.ndarray) -> np.ndarray:
        return np.asarray(self.metric(choices)) <= self.limit


def feasible(constraints: Sequence[BatchFn], choices: np.ndarray) -> np.ndarray:
    mask = np.ones(len(choices), dtype=bool)
    for constraint in constraints:
        mask &= np.asarray(constraint(choices), dtype=bool)
    return mask


@dataclass
class SearchResult:
    best: Choices | None
    best_score: float
    evaluated: int  # distinct feasible candidates scored
    history: list[tuple[Choices, float]] = field(default_factory=list)


def _feasible_samples(space, constraints, count, rng, seen, tries=50) -> list[Choices]:
    """Up to `count` new feasible samples (rejection sampling in batches)."""
    found: list[Choices] = []
    for _ in range(tries):
        batch = [space.sample(rng) for _ in range(4 * count)]
        batch = [c for c in dict.fromkeys(batch) if c not in seen]
        if batch:
            for c, ok in zip(batch, feasible(constraints, np.array(batch))):
                if ok and c not in seen and len(found) < count:
                    found.append(c)
                    seen.add(c)
        if len(found) == count:
            break
    return found


def evolve(
    space: ChoiceSpace,
    objective: BatchFn,
    constraints: Sequence[BatchFn] = (),
    population: int = 64,
    generations: int = 20,
    tournament: int = 8,
    mutation_rate: float = 0.1,
    crossover_prob: float = 0.5,
    seed: int = 0,
) -> SearchResult:
    """Aging evolution (Real et al., 2019): each generation breeds `population` children from
    tournament-selected parents (crossover, then mutation), keeps the feasible new ones, and
    retires the oldest members. Maximises `objective`."""
    rng = np.random.default_rng(seed)
    seen: set[Choices] = set()
    members = _feasible_samples(space, constraints, population, rng, seen)
    if not members:
        return SearchResult(None, float("-inf"), 0)
    scores = list(np.asarray(objective(np.array(members)), dtype=float))
    history = list(zip(members, scores))
    for _ in range(generations):
        children = []
        for _ in range(4 * population):
            if len(children) == population:
                break
            parent = _tournament(members, scores, tournament, rng)
            child = parent
            if rng.random() < crossover_prob:
                child = space.crossover(child, _tournament(members, scores, tournament, rng), rng)
            child = space.mutate(child, rng, mutation_rate)
            if child not in seen:
                seen.add(child)
                children.append(child)
        children = [c for c, ok in zip(children, feasible(constraints, np.array(children))) if ok] if children else []
        if not children:
            continue
        child_scores = list(np.asarray(objective(np.array(children)), dtype=float))
        history += list(zip(children, child_scores))
        members, scores = (members + children)[len(children) :], (scores + child_scores)[len(children) :]
    best, best_score = max(history, key=lambda item: item[1])
    return SearchResult(best, best_score, len(history), history)


def _tournament(members, scores, size, rng) -> Choices:
    picks = rng.choice(len(members), size=min(size, len(members)), replace=False)
    return members[max(picks, key=lambda i: scores[i])]


def pareto_front(points: np.ndarray) -> np.ndarray:
    """Indices of the non-dominated rows of `points` ([N, objectives], all to maximise)."""
    points = np.asarray(points, dtype=float)
    dominated = np.zeros(len(points), dtype=bool)
    for i in range(len(points)):
        better_or_equal = np.all(points >= points[i], axis=1)
        strictly_better = np.any(points > points[i], axis=1)
        dominated[i] = np.any(better_or_equal & strictly_better)
    return np.flatnonzero(~dominated)


def _fronts(points: np.ndarray) -> list[np.ndarray]:
    remaining = np.arange(len(points))
    fronts = []
    while len(remaining):
        front = remaining[pareto_front(points[remaining])]
        fronts.append(front)
        remaining = np.setdiff1d(remaining, front)
    return fronts


def _crowding(points: np.ndarray) -> np.ndarray:
    distance = np.zeros(len(points))
    for k in range(points.shape[1]):
        order = np.argsort(points[:, k])
        span = points[order[-1], k] - points[order[0], k] or 1.0
        distance[order[0]] = distance[order[-1]] = np.inf
        distance[order[1:-1]] += (points[order[2:], k] - points[order[:-2], k]) / span
    return distance


def nsga2(
    space: ChoiceSpace,
    objectives: Sequence[BatchFn],
    constraints: Sequence[BatchFn] = (),
    population: int = 64,
    generations: int = 20,
    mutation_rate: float = 0.1,
    seed: int = 0,
) -> tuple[list[Choices], np.ndarray]:
    """NSGA-II (Deb et al., 2002) maximising every objective (negate one to minimise it).
    Returns the final population's Pareto front and its objective values."""
    rng = np.random.default_rng(seed)
    seen: set[Choices] = set()

    def score(cs):
        return np.stack([np.asarray(f(np.array(cs)), dtype=float) for f in objectives], axis=1)

    members = _feasible_samples(space, constraints, population, rng, seen)
    if not members:
        return [], np.zeros((0, len(objectives)))
    values = score(members)
    for _ in range(generations):
        rank = np.empty(len(members), dtype=int)
        for r, front in enumerate(_fronts(values)):
            rank[front] = r
        crowd = np.zeros(len(members))
        for front in _fronts(values):
            crowd[front] = _crowding(values[front])
        children = []
        for _ in range(4 * population):
            if len(children) == population:
                break
            a, b = (min(rng.choice(len(members), 2, replace=False), key=lambda i: (rank[i], -crowd[i])) for _ in "ab")
            child = space.mutate(space.crossover(members[a], members[b], rng), rng, mutation_rate)
            if child not in seen:
                seen.add(child)
                children.append(child)
        children = [c for c, ok in zip(children, feasible(constraints, np.array(children))) if ok] if children else []
        pool = members + children
        pool_values = np.concatenate([values, score(children)]) if children else values
        keep: list[int] = []
        for front in _fronts(pool_values):
            if len(keep) + len(front) <= population:
                keep += list(front)
            else:
                by_crowding = front[np.argsort(-_crowding(pool_values[front]))]
                keep += list(by_crowding[: population - len(keep)])
                break
        members, values = [pool[i] for i in keep], pool_values[keep]
    front = pareto_front(values)
    return [members[i] for i in front], values[front]
