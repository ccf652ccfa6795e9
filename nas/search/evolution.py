"""Evolutionary search over a ChoiceSpace: aging (regularised) evolution for one objective under
constraints, and NSGA-II for a Pareto front of several.

A strategy only needs the space's sample / mutate / crossover. Objectives and constraints are
batch functions of choices ([N, dimensions] option indices -> [N] values), so the cheap ones
(latency from latency_models.predictor.batch, MACs, params) score thousands of candidates per call; a
constraint is a filter composed around the strategy (`Budget`), never code inside it.
Candidates are deduplicated on their canonical choices, which determine the network. The same
seed gives the same search.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from common.values import all_finite
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
class EvolutionResult:
    """What aging evolution has found so far: its best candidate and every candidate it scored."""

    best: Choices | None
    best_score: float
    evaluated: int  # distinct feasible candidates scored
    history: list[tuple[Choices, float]] = field(default_factory=list)


def feasible_samples(space, constraints, count, rng, seen, seeds=(), tries=50) -> list[Choices]:
    """Up to `count` new feasible candidates: rejection sampling in batches; when a tight
    constraint leaves that short, mutations of the feasible `seeds` (e.g. the smallest network)."""
    found: list[Choices] = []

    def offer(batch):
        batch = [c for c in dict.fromkeys(batch) if c not in seen]
        if batch:
            for c, ok in zip(batch, feasible(constraints, np.array(batch))):
                if ok and c not in seen and len(found) < count:
                    found.append(c)
                    seen.add(c)

    for _ in range(tries):
        offer([space.sample(rng) for _ in range(4 * count)])
        if len(found) == count:
            return found
    seeds = list(seeds)
    if seeds:
        offer(seeds)
        for _ in range(tries):
            if len(found) == count:
                break
            offer([space.mutate(seeds[int(rng.integers(len(seeds)))], rng, 0.1) for _ in range(4 * count)])
    return found


class Strategy:
    """One search advanced a generation at a time, whose whole state is JSON (so a killed
    search resumes from its last generation with the same result as an uninterrupted one)."""

    generation: int = 0

    def __init__(self, space: ChoiceSpace, constraints: Sequence[BatchFn], population: int, seed: int, seeds=()):
        self.space, self.constraints, self.population = space, list(constraints), population
        self.rng = np.random.default_rng(seed)
        self.seen: set[Choices] = set()
        self.members: list[Choices] = feasible_samples(space, constraints, population, self.rng, self.seen, seeds)

    def _breed(self, pick_parents) -> list[Choices]:
        """Up to `population` new feasible children of parents chosen by `pick_parents(rng)`."""
        children: list[Choices] = []
        for _ in range(4 * self.population):
            if len(children) == self.population:
                break
            child = pick_parents()
            if child not in self.seen:
                self.seen.add(child)
                children.append(child)
        if not children:
            return []
        return [c for c, ok in zip(children, feasible(self.constraints, np.array(children))) if ok]

    def state(self) -> dict:
        return {
            "generation": self.generation,
            "rng": self.rng.bit_generator.state,
            "seen": sorted(self.seen),
            "members": [list(c) for c in self.members],
        }

    def load_state(self, state: dict) -> None:
        """Resume from `state`; ValueError naming the field when it holds what no search of this
        space writes (negative generations, genes outside a dimension's options)."""
        generation = state["generation"]
        if isinstance(generation, bool) or not isinstance(generation, int) or generation < 0:
            raise ValueError(f"generation: must be a non-negative integer, got {generation!r}")
        self.generation = generation
        self.rng.bit_generator.state = state["rng"]
        self.seen = {self._choices(c, "seen") for c in state["seen"]}
        self.members = [self._choices(c, "members") for c in state["members"]]

    def _choices(self, genes: Any, what: str) -> Choices:
        sizes = [len(d.options) for d in self.space.dimensions]
        if not isinstance(genes, list) or len(genes) != len(sizes):
            raise ValueError(f"{what}: expected lists of {len(sizes)} option indices, got {str(genes)[:60]}")
        for gene, size in zip(genes, sizes):
            if isinstance(gene, bool) or not isinstance(gene, int) or not 0 <= gene < size:
                raise ValueError(f"{what}: option index {gene!r} outside 0..{size - 1}")
        return tuple(genes)


def _finite(values: Any, what: str) -> list[float]:
    out = [float(x) for x in values]
    if not all_finite(out):
        raise ValueError(f"{what}: scores must be finite numbers")
    return out


class AgingEvolution(Strategy):
    """Aging (regularised) evolution (Real et al., 2019), maximising `objective`: each
    generation breeds `population` children from tournament-selected parents (crossover, then
    mutation), keeps the feasible new ones and retires as many of the oldest members."""

    def __init__(
        self,
        space: ChoiceSpace,
        objective: BatchFn,
        constraints: Sequence[BatchFn] = (),
        population: int = 64,
        tournament: int = 8,
        mutation_rate: float = 0.1,
        crossover_prob: float = 0.5,
        seed: int = 0,
        seeds=(),
    ):
        super().__init__(space, constraints, population, seed, seeds)
        self.objective, self.tournament = objective, tournament
        self.mutation_rate, self.crossover_prob = mutation_rate, crossover_prob
        self.scores = list(np.asarray(objective(np.array(self.members)), dtype=float)) if self.members else []
        self.history = list(zip(self.members, self.scores))

    def _child(self) -> Choices:
        child = _tournament(self.members, self.scores, self.tournament, self.rng)
        if self.rng.random() < self.crossover_prob:
            other = _tournament(self.members, self.scores, self.tournament, self.rng)
            child = self.space.crossover(child, other, self.rng)
        return self.space.mutate(child, self.rng, self.mutation_rate)

    def step(self) -> None:
        self.generation += 1
        if not self.members:
            return
        children = self._breed(self._child)
        if not children:
            return
        child_scores = list(np.asarray(self.objective(np.array(children)), dtype=float))
        self.history += list(zip(children, child_scores))
        keep = len(children)
        self.members, self.scores = (self.members + children)[keep:], (self.scores + child_scores)[keep:]

    def result(self) -> EvolutionResult:
        if not self.history:
            return EvolutionResult(None, float("-inf"), 0)
        best, best_score = max(self.history, key=lambda item: item[1])
        return EvolutionResult(best, best_score, len(self.history), self.history)

    def state(self) -> dict:
        return {
            **super().state(),
            "scores": self.scores,
            "history": [[list(c), score] for c, score in self.history],
        }

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.scores = _finite(state["scores"], "scores")
        if len(self.scores) != len(self.members):
            raise ValueError(f"scores: {len(self.scores)} for {len(self.members)} members")
        history = state["history"]
        scores = _finite([score for _, score in history], "history")
        self.history = [(self._choices(c, "history"), score) for (c, _), score in zip(history, scores)]


def evolve(space: ChoiceSpace, objective: BatchFn, constraints: Sequence[BatchFn] = (), generations: int = 20, **kw):
    """Aging evolution run for `generations` (see AgingEvolution for the other arguments)."""
    search = AgingEvolution(space, objective, constraints, **kw)
    for _ in range(generations):
        search.step()
    return search.result()


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


class NSGA2(Strategy):
    """NSGA-II (Deb et al., 2002) maximising every objective (negate one to minimise it):
    parents by binary tournament on (front rank, crowding), survivors by front then crowding."""

    def __init__(
        self,
        space: ChoiceSpace,
        objectives: Sequence[BatchFn],
        constraints: Sequence[BatchFn] = (),
        population: int = 64,
        mutation_rate: float = 0.1,
        seed: int = 0,
        seeds=(),
    ):
        super().__init__(space, constraints, population, seed, seeds)
        self.objectives, self.mutation_rate = list(objectives), mutation_rate
        self.values = self._score(self.members) if self.members else np.zeros((0, len(self.objectives)))

    def _score(self, cs) -> np.ndarray:
        return np.stack([np.asarray(f(np.array(cs)), dtype=float) for f in self.objectives], axis=1)

    def step(self) -> None:
        self.generation += 1
        if not self.members:
            return
        rank = np.empty(len(self.members), dtype=int)
        crowd = np.zeros(len(self.members))
        for r, front in enumerate(_fronts(self.values)):
            rank[front] = r
            crowd[front] = _crowding(self.values[front])

        def child():
            a, b = (
                min(self.rng.choice(len(self.members), 2, replace=False), key=lambda i: (rank[i], -crowd[i]))
                for _ in "ab"
            )
            mixed = self.space.crossover(self.members[a], self.members[b], self.rng)
            return self.space.mutate(mixed, self.rng, self.mutation_rate)

        children = self._breed(child)
        pool = self.members + children
        pool_values = np.concatenate([self.values, self._score(children)]) if children else self.values
        keep: list[int] = []
        for front in _fronts(pool_values):
            if len(keep) + len(front) <= self.population:
                keep += list(front)
            else:
                by_crowding = front[np.argsort(-_crowding(pool_values[front]))]
                keep += list(by_crowding[: self.population - len(keep)])
                break
        self.members, self.values = [pool[i] for i in keep], pool_values[keep]

    def front(self) -> tuple[list[Choices], np.ndarray]:
        """The current population's non-dominated members and their objective values."""
        if not self.members:
            return [], np.zeros((0, len(self.objectives)))
        front = pareto_front(self.values)
        return [self.members[i] for i in front], self.values[front]

    def state(self) -> dict:
        return {**super().state(), "values": self.values.tolist()}

    def load_state(self, state: dict) -> None:
        super().load_state(state)
        self.values = np.asarray(state["values"], dtype=float).reshape(len(self.members), len(self.objectives))
        if not all_finite(self.values):
            raise ValueError("values: must be finite numbers")


def nsga2(space: ChoiceSpace, objectives: Sequence[BatchFn], constraints: Sequence[BatchFn] = (), generations=20, **kw):
    """NSGA-II run for `generations`; returns the final population's Pareto front and values."""
    search = NSGA2(space, objectives, constraints, **kw)
    for _ in range(generations):
        search.step()
    return search.front()
