"""Supernet train-step cost against a plain Flax model of the largest subnet, and recompilation.

  python benchmarks/supernet_step.py [--batch-size 64] [--steps 5] [--samples 5] [--cpu-devices auto]

Prints, measured in one run on the same devices:
  - the step time of the plain (static-shape) model of the largest subnet,
  - the supernet step with the largest subnet, and with sampled subnets (one subnet per step,
    same optimiser and loss), and their ratios to the plain step,
  - the full sandwich step the training runs (largest + smallest + random),
  - the number of compilations while 20 different sampled subnets run in a row (0 expected),
  - the default training budget this step time implies.
The proxy is the one `python -m nas.train --data fashion-mnist` trains: 28 px, 1 channel, 10
classes. Timings are medians of --steps runs after a warm-up step.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time

import jax
import numpy as np
from flax import nnx

from nas.options import add_cpu_devices
from nas.supernet.model import SpecNet
from nas.supernet.supernet import Layout, Supernet, SupernetConfig, stack_subnets
from nas.training.run import TrainConfig
from nas.training.step import (
    init_state,
    make_mesh,
    make_optimizer,
    make_plain_train_step,
    make_train_step,
    shard_batch,
    split,
)
from nas.training.xla import configure_cpu_devices
from search_spaces.graph import count_macs

TRAIN_IMAGES = 60000


def timed(run, steps: int) -> float:
    run(0)  # warm-up (and compilation)
    times = []
    for i in range(steps):
        began = time.perf_counter()
        run(i + 1)
        times.append(time.perf_counter() - began)
    return statistics.median(times)


class CompileCounter:
    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._listen)

    def _listen(self, event: str, duration: float, **kwargs) -> None:
        if event == "/jax/core/compile/backend_compile_duration":
            self.count += 1


def main() -> None:
    defaults = TrainConfig()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per measurement (median)")
    parser.add_argument("--samples", type=int, default=5, help="sampled subnets timed")
    add_cpu_devices(parser)
    args = parser.parse_args()
    configure_cpu_devices(args.cpu_devices)

    counter = CompileCounter()
    config = SupernetConfig()
    layout = Layout(config)
    mesh = make_mesh()
    num_classes = config.space_args["num_classes"]
    optim = dataclasses.replace(TrainConfig().optim(steps_per_epoch=1000, epochs=1), warmup_steps=1)
    tx = make_optimizer(optim)
    rng = np.random.default_rng(0)
    images = rng.standard_normal((args.batch_size, config.resolution, config.resolution, 1)).astype(np.float32)
    labels = rng.integers(0, num_classes, args.batch_size).astype(np.int32)
    images, labels = shard_batch(mesh, images, labels)
    print(
        f"devices: {mesh.size} x {jax.devices()[0].platform}, batch {args.batch_size}, proxy {config.resolution} px, "
        f"largest subnet {count_macs(layout.largest) / 1e6:.1f} MMACs, smallest "
        f"{count_macs(layout.materialize(layout.smallest_choices)) / 1e6:.1f} MMACs"
    )

    # plain model of the largest subnet
    plain_graph, plain_params, plain_stats = nnx.split(SpecNet(layout.largest), nnx.Param, nnx.BatchStat)
    step = make_plain_train_step(plain_graph, plain_stats, tx, mesh, optim, num_classes)
    holder = {"state": init_state(plain_params, tx, mesh)}

    def run_plain(_):
        holder["state"], metrics = step(holder["state"], images, labels)
        jax.block_until_ready(metrics)

    t_plain = timed(run_plain, args.steps)
    print(f"plain largest subnet                 {t_plain * 1000:8.1f} ms/step")

    # supernet, one subnet per step (the same work as the plain step when it is the largest)
    graphdef, params, stats = split(Supernet(config))
    sup = make_train_step(graphdef, stats, tx, mesh, optim, num_classes)
    holder["sup"] = init_state(params, tx, mesh)

    def run_sub(subnets):
        def go(i):
            holder["sup"], metrics = sup(holder["sup"], images, labels, subnets[i % len(subnets)])
            jax.block_until_ready(metrics)

        return go

    largest = stack_subnets([layout.subnet(layout.largest_choices)])
    t_largest = timed(run_sub([largest]), args.steps)
    print(f"supernet, largest subnet             {t_largest * 1000:8.1f} ms/step   ratio {t_largest / t_plain:.2f}")
    sampled = [stack_subnets([layout.subnet(layout.space.sample(rng))]) for _ in range(args.samples * args.steps)]
    t_sampled = timed(run_sub(sampled), args.samples * args.steps)
    print(
        f"supernet, sampled subnets            {t_sampled * 1000:8.1f} ms/step   ratio {t_sampled / t_plain:.2f} "
        f"({'<=' if t_sampled / t_plain <= 1.3 else '>'} 1.3)"
    )

    # no recompilation: 20 different subnets in a row through the already compiled step
    before, seen = counter.count, set()
    for _ in range(20):
        choices = layout.space.sample(rng)
        seen.add(choices)
        holder["sup"], metrics = sup(holder["sup"], images, labels, stack_subnets([layout.subnet(choices)]))
    jax.block_until_ready(metrics)
    recompiled = counter.count - before
    print(f"20 different subnets in a row ({len(seen)} distinct): {recompiled} recompilations")

    # the sandwich step the training runs
    t = defaults
    sandwich = make_train_step(graphdef, stats, tx, mesh, optim, num_classes)
    holder["sw"] = init_state(split(Supernet(config))[1], tx, mesh)  # the steps above donated `params`

    def run_sandwich(i):
        subs = [layout.largest_choices, layout.smallest_choices]
        subs += [layout.space.sample(np.random.default_rng([0, i])) for _ in range(t.random_subnets)]
        holder["sw"], metrics = sandwich(holder["sw"], images, labels, stack_subnets([layout.subnet(c) for c in subs]))
        jax.block_until_ready(metrics)

    t_sandwich = timed(run_sandwich, args.steps)
    steps = t.epochs * (TRAIN_IMAGES // t.batch_size)
    print(
        f"sandwich step (largest, smallest, {t.random_subnets} random) {t_sandwich * 1000:8.1f} ms/step: default run "
        f"{t.epochs} epochs x {TRAIN_IMAGES // t.batch_size} steps = {steps * t_sandwich / 60:.0f} min on these "
        f"{mesh.size} device(s)" + (" at batch " + str(args.batch_size) if args.batch_size != t.batch_size else "")
    )


if __name__ == "__main__":
    main()
