"""Evolutionary search: constraints are filters, results are deterministic, evolution beats
random sampling at equal cost, and NSGA-II returns a true Pareto front."""

import numpy as np
import pytest

from latency_models.predictor.batch import SpaceCost
from nas.search.evolution import Budget, evolve, feasible, nsga2, pareto_front
from search_spaces import get_space


@pytest.fixture(scope="module")
def space():
    return get_space("mbv3")


@pytest.fixture(scope="module")
def macs(space):
    return SpaceCost(space, "macs")


def similarity_to(space, target):
    """A stand-in accuracy: how many decisions agree with a hidden 'best' architecture."""
    goal = space.encode(target)

    def objective(choices):
        return np.array([space.encode(tuple(int(x) for x in c)) @ goal for c in choices])

    return objective


def test_budget_is_a_filter(space, macs):
    rng = np.random.default_rng(0)
    choices = np.array([space.sample(rng) for _ in range(200)])
    budget = Budget("macs", macs, 300e6)
    assert np.array_equal(feasible([budget], choices), macs(choices) <= 300e6)
    assert 0 < feasible([budget], choices).mean() < 1


def test_evolution_respects_constraints_and_is_deterministic(space, macs):
    objective = similarity_to(space, space.sample(np.random.default_rng(9)))
    budget = Budget("macs", macs, 250e6)
    first = evolve(space, objective, [budget], population=16, generations=5, seed=3)
    again = evolve(space, objective, [budget], population=16, generations=5, seed=3)
    assert first.best == again.best and first.history == again.history
    chosen = np.array([c for c, _ in first.history])
    assert np.all(macs(chosen) <= 250e6)
    assert len(set(c for c, _ in first.history)) == len(first.history)  # no candidate scored twice


def test_evolution_beats_random_search_at_equal_evaluations(space, macs):
    budget = Budget("macs", macs, 250e6)
    gains = []
    for seed in range(3):
        objective = similarity_to(space, space.sample(np.random.default_rng(100 + seed)))
        result = evolve(space, objective, [budget], population=16, generations=8, seed=seed)
        rng = np.random.default_rng(seed)
        randoms = [c for c in (space.sample(rng) for _ in range(20 * result.evaluated))]
        randoms = np.array(randoms)[feasible([budget], np.array(randoms))][: result.evaluated]
        gains.append(result.best_score - objective(randoms).max())
    assert np.mean(gains) > 0


def test_pareto_front():
    points = np.array([[1, 5], [2, 4], [2, 2], [0, 6], [1, 4]])
    assert sorted(pareto_front(points)) == [0, 1, 3]


def test_nsga2_front_is_feasible_and_non_dominated(space, macs):
    objective = similarity_to(space, space.sample(np.random.default_rng(4)))
    budget = Budget("macs", macs, 300e6)
    front, values = nsga2(space, [objective, lambda c: -macs(c)], [budget], population=16, generations=5, seed=1)
    assert front and len(front) == len(values)
    assert np.all(macs(np.array(front)) <= 300e6)
    assert len(pareto_front(values)) == len(values)


def test_constraints_compose_as_filters(space, macs):
    from latency_models.predictor.batch import SpaceCost

    params = SpaceCost(space, "params")
    rng = np.random.default_rng(0)
    sample = np.array([space.sample(rng) for _ in range(200)])
    mac_limit, param_limit = np.median(macs(sample)), np.median(params(sample))
    both = [Budget("macs", macs, mac_limit), Budget("params", params, param_limit)]
    mask = feasible(both, sample)
    assert np.array_equal(mask, (macs(sample) <= mac_limit) & (params(sample) <= param_limit))
    result = evolve(space, lambda c: macs(c) + params(c), both, population=16, generations=4, seed=0)
    chosen = np.array([result.best])
    assert macs(chosen)[0] <= mac_limit and params(chosen)[0] <= param_limit


@pytest.mark.parametrize("strategy", ["aging", "nsga2"])
def test_state_through_json_resumes_to_the_same_search(space, macs, strategy):
    import json

    from nas.search.evolution import NSGA2, AgingEvolution

    budget = Budget(
        "macs", macs, np.median(macs(np.array([space.sample(np.random.default_rng(1)) for _ in range(64)])))
    )

    def make():
        if strategy == "aging":
            return AgingEvolution(space, lambda c: -macs(c) % 7, [budget], population=12, seed=4)
        return NSGA2(space, [lambda c: macs(c), lambda c: -(macs(c) % 7)], [budget], population=12, seed=4)

    straight = make()
    for _ in range(6):
        straight.step()
    first = make()
    for _ in range(3):
        first.step()
    resumed = make()
    resumed.load_state(json.loads(json.dumps(first.state())))
    for _ in range(3):
        resumed.step()
    assert resumed.state() == straight.state()
