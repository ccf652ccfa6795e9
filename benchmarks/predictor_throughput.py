"""Benchmark: architectures scored per second by the batch-jitted latency predictor
(latency_models.predictor.batch.SpaceLatency), against issue #4's target of 100,000 per second, and
against pricing networks one by one.

    python benchmarks/predictor_throughput.py [--target note10] [--space mbv3] [--batch 100000]
"""

import argparse
import time

import numpy as np

from latency_models.predictor.batch import SpaceLatency
from latency_models.profiles.registry import load_predictor
from search_spaces import get_space

TARGET_PER_S = 100_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="note10")
    parser.add_argument("--space", default="mbv3")
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    predictor, space = load_predictor(args.target), get_space(args.space)
    start = time.perf_counter()
    batch = SpaceLatency(predictor, space)
    build_s = time.perf_counter() - start
    rng = np.random.default_rng(0)
    choices = np.array([space.sample(rng) for _ in range(args.batch)])
    batch(choices[:10])  # compile
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        batch(choices)
        times.append(time.perf_counter() - start)
    per_s = args.batch / min(times)
    start = time.perf_counter()
    for c in choices[:200]:
        predictor.spec_ms(space.materialize(tuple(int(x) for x in c)))
    one_by_one = 200 / (time.perf_counter() - start)
    print(
        f"{args.space} on {args.target}: tables built in {build_s:.2f} s; batch of {args.batch}: "
        f"{per_s:,.0f} architectures/s (best of {args.repeats}); one by one: {one_by_one:,.0f}/s"
    )
    print(f"batch/target = {per_s / TARGET_PER_S:.1f}x; batch/one-by-one = {per_s / one_by_one:,.0f}x")


if __name__ == "__main__":
    main()
