"""Benchmark: aging evolution against random search at equal numbers of scored candidates.

    python benchmarks/search_vs_random.py [--target pixel4] [--seeds 5] [--population 100]
                                          [--generations 30] [--estimator NAME|PATH]

For each seed, the search `nas.search` runs (aging evolution under the target's latency budget,
by default MobileNetV2-1.0's predicted latency, over the estimator's networks) scores some number N of
distinct feasible candidates with the accuracy estimator; random search then draws uniform
samples of the same space until it has scored N distinct feasible ones. Prints the best
feasible estimated top-1 of each, their means over the seeds, and candidates scored per second.
"""

import argparse
import time

import numpy as np

from nas.search.evolution import AgingEvolution, feasible_samples
from nas.search.preparation import BASELINE, DeviceSearch, load_estimator, search_space
from nas.search.settings import SearchSettings


def random_search(space, objective, constraints, count: int, seed: int) -> float:
    found = feasible_samples(space, constraints, count, np.random.default_rng([seed, 99]), set(), tries=1000)
    assert len(found) == count, f"random search found only {len(found)} feasible candidates of {count}"
    return float(np.max(objective(np.array(found))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="pixel4")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--population", type=int, default=100)
    parser.add_argument("--generations", type=int, default=30)
    parser.add_argument("--estimator", help="accuracy estimator: bundled name or JSON (default: imagenet)")
    args = parser.parse_args()

    # the main job's pipeline (predictor, space, estimator, budget, constraint); the strategy alone is
    # run here, without the search's seeding with the smallest network, so both start alike
    settings = SearchSettings(
        target=args.target, estimator=args.estimator, population=args.population, generations=args.generations
    )
    estimator, path = load_estimator(settings)
    space = search_space(settings, estimator)
    pipeline = DeviceSearch(settings, space, estimator, path)
    objective, constraints, budget = pipeline.accuracy, pipeline.constraints, pipeline.budget
    print(f"{args.target}: budget {budget:.2f} ms ({BASELINE}), estimator {path}")
    print(f"{'seed':>4} {'scored':>7} {'evolution':>10} {'random':>10} {'evo s':>7} {'rand s':>7}")
    evolution_best, random_best, rates = [], [], []
    for seed in range(args.seeds):
        began = time.perf_counter()
        search = AgingEvolution(space, objective, constraints, population=args.population, seed=seed)
        for _ in range(args.generations):
            search.step()
        result = search.result()
        evo_s = time.perf_counter() - began
        began = time.perf_counter()
        rand = random_search(space, objective, constraints, result.evaluated, seed)
        rand_s = time.perf_counter() - began
        evolution_best.append(result.best_score)
        random_best.append(rand)
        rates.append(result.evaluated / evo_s)
        print(f"{seed:>4} {result.evaluated:>7} {result.best_score:>10.4%} {rand:>10.4%} {evo_s:>7.2f} {rand_s:>7.2f}")
    evo_mean, rand_mean = float(np.mean(evolution_best)), float(np.mean(random_best))
    print(
        f"mean best feasible estimated top-1: evolution {evo_mean:.4%}, random {rand_mean:.4%}, "
        f"difference {100 * (evo_mean - rand_mean):+.3f} points ({'evolution' if evo_mean > rand_mean else 'random'} "
        f"better); evolution scored {np.mean(rates):.0f} candidates/s (estimator + latency + bookkeeping)"
    )


if __name__ == "__main__":
    main()
