"""Does the supernet rank subnets as training them alone would? Kendall tau, run once.

  python benchmarks/supernet_ranking.py --supernet runs/default [--subnets 8] [--epochs 1]
                                        [--out ranking.json]

Picks --subnets subnets that span the space (the smallest, the largest, and the others at
evenly spaced quantiles of proxy MACs among 2000 random samples), then for each:
  - inherited: top-1 on the test split with the supernet's weights after batch-norm
    recalibration (as python -m nas.evaluate reports it);
  - stand-alone: top-1 after training the same network from scratch for --epochs with the
    run's data, batch size, optimiser and schedule (plain Flax model, no weight sharing).
Prints both, their ranks and Kendall's tau-b between the two lists. Long: every stand-alone
training is a pass over the training set per epoch (about 5-10 minutes per subnet and epoch on
2 CPU cores); --train-images shortens it for a quick look.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from common.files import write_atomic
from common.stats import kendall_tau
from nas.options import DEFAULT_CALIB_IMAGES, add_cpu_devices
from nas.training.data import load_dataset
from nas.training.evaluation import Evaluator, calibration_images, eval_batch, plain_forward
from nas.training.run import Run, load_supernet
from nas.training.standalone import train_alone
from nas.training.step import make_mesh
from nas.training.xla import configure_cpu_devices
from search_spaces.graph import count_macs


def spanning_subnets(layout, count: int, seed: int) -> list[tuple]:
    rng = np.random.default_rng(seed)
    pool = {layout.space.sample(rng) for _ in range(2000)}
    ranked = sorted(pool, key=lambda c: count_macs(layout.materialize(c)))
    chosen = [layout.smallest_choices]
    for q in np.linspace(0, 1, count)[1:-1]:
        chosen.append(ranked[int(round(q * (len(ranked) - 1)))])
    chosen.append(layout.largest_choices)
    return chosen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--supernet", required=True, help="run folder of a trained supernet")
    parser.add_argument("--subnets", type=int, default=8, help="subnets to compare (>= 6 for the issue's check)")
    parser.add_argument("--epochs", type=int, default=1, help="stand-alone training epochs (default 1)")
    parser.add_argument("--train-images", type=int, help="stand-alone training on this many images only")
    parser.add_argument("--only", choices=("largest", "smallest"), help="just this subnet (no tau)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="write the results as JSON here")
    add_cpu_devices(parser)
    args = parser.parse_args()
    configure_cpu_devices(args.cpu_devices)

    run = Run.open(args.supernet)
    config = run.config
    data = load_dataset(config.train.data).subset(config.train.train_images, config.train.seed)
    mesh = make_mesh()
    trained = load_supernet(run, mesh)
    layout = trained.layout
    batch = eval_batch(mesh)
    calib = calibration_images(data.train_x, DEFAULT_CALIB_IMAGES, config.train.seed)
    inherited_eval = Evaluator(
        trained.graphdef, trained.stats, mesh, config.normalizer, calib, data.test_x, data.test_y, batch
    )
    alone_data = data
    if args.train_images:
        keep = np.random.default_rng([args.seed, 4]).permutation(len(data.train_y))[: args.train_images]
        alone_data = type(data)(
            data.name, data.train_x[keep], data.train_y[keep], data.test_x, data.test_y, data.classes
        )
    print(
        f"{args.supernet} (step {trained.step}); stand-alone: {args.epochs} epoch(s) on {len(alone_data.train_y)} "
        f"images; {mesh.size} device(s)",
        flush=True,
    )
    print(f"{'subnet':>6} {'MMACs':>7} {'inherited':>10} {'alone':>8} {'seconds':>8}", flush=True)
    rows = []
    if args.only:  # one subnet: how far stand-alone training of the same length takes it
        subnets = [layout.largest_choices if args.only == "largest" else layout.smallest_choices]
    else:
        subnets = spanning_subnets(layout, args.subnets, args.seed)
    for index, choices in enumerate(subnets):
        spec = layout.materialize(choices)
        began = time.perf_counter()
        inherited = inherited_eval.top1(trained.params, layout.subnet(choices))
        graphdef, params, stats = train_alone(
            spec, alone_data, config.train, config.normalizer, mesh, args.epochs, args.seed
        )
        alone_eval = Evaluator(
            graphdef, stats, mesh, config.normalizer, calib, data.test_x, data.test_y, batch, forward=plain_forward
        )
        alone = alone_eval.top1(params, None)
        seconds = time.perf_counter() - began
        rows.append(
            {
                "choices": layout.space.values(choices),
                "proxy_macs": count_macs(spec),
                "inherited": inherited,
                "alone": alone,
                "seconds": seconds,
            }
        )
        print(f"{index:>6} {count_macs(spec) / 1e6:7.1f} {inherited:10.2%} {alone:8.2%} {seconds:8.0f}", flush=True)
        tau = kendall_tau([r["inherited"] for r in rows], [r["alone"] for r in rows])
        if args.out:  # after every subnet: a long run cut short keeps what it measured
            report = {"supernet": args.supernet, "step": trained.step, "epochs": args.epochs, "tau": tau}
            report["subnets"] = rows
            write_atomic(args.out, json.dumps(report, indent=2) + "\n")
    print(f"Kendall tau (inherited vs stand-alone, {len(rows)} subnets): {tau:.3f}")


if __name__ == "__main__":
    main()
