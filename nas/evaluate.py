"""`python -m nas.evaluate`: top-1 of subnets with weights inherited from a trained supernet.

  python -m nas.evaluate --supernet runs/NAME --arch SPEC.json
  python -m nas.evaluate --supernet runs/NAME --zoo NAME
  python -m nas.evaluate --supernet runs/NAME --sample K [--seed S]
  python -m nas.evaluate --supernet runs/NAME --largest --smallest

Each subnet's batch-norm statistics are recomputed on training images first (recalibration),
then it is evaluated on the run's test split. Everything needed comes from the run folder.
An architecture outside the supernet (most zoo models) exits with code 2, naming the first
layer that differs.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from common.cli import ArgumentParser, UserError, non_negative_int, positive_int, run, seed_int
from nas.options import add_calib_images, add_cpu_devices, add_supernet
from nas.supernet.match import NotASubnet, match_spec
from nas.supernet.supernet import Layout
from nas.training.evaluation import open_evaluator
from nas.training.run import Run
from nas.training.xla import configure_cpu_devices
from search_spaces import zoo
from search_spaces.arch_spec import ArchSpec
from search_spaces.graph import count_macs, count_params

PROG = "python -m nas.evaluate"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Top-1 of subnets with inherited weights (after BN recalibration).")
    add_supernet(p, required=True, purpose="the subnets inherit its weights")
    p.add_argument("--arch", action="append", default=[], help="architecture spec JSON (repeatable)")
    p.add_argument("--zoo", action="append", default=[], help="published architecture by name (repeatable)")
    p.add_argument(
        "--sample", type=non_negative_int, default=0, help="evaluate K subnets sampled uniformly from the space"
    )
    p.add_argument("--largest", action="store_true", help="evaluate the largest subnet")
    p.add_argument("--smallest", action="store_true", help="evaluate the smallest subnet")
    p.add_argument("--seed", type=seed_int, default=0, help="seed of --sample (default: 0)")
    p.add_argument("--step", type=int, help="checkpoint step to load (default: the latest)")
    add_calib_images(p)
    p.add_argument("--test-images", type=positive_int, help="evaluate on the first N test images (default: all)")
    p.add_argument("--json", action="store_true", help="one JSON object per subnet on stdout")
    add_cpu_devices(p)
    return p


def _targets(args, layout: Layout) -> list[tuple[str, tuple]]:
    """(label, choices) of every requested subnet, checked before any work starts."""
    targets = []
    for path in args.arch:
        spec = ArchSpec.load(path)
        try:
            targets.append((spec.name or path, match_spec(layout, spec)))
        except NotASubnet as exc:
            raise UserError(f"{path}: not a subnet of the supernet: {exc}") from None
    for name in args.zoo:
        try:
            spec = zoo.get(name)
        except KeyError as exc:
            raise UserError(str(exc.args[0])) from None
        try:
            targets.append((name, match_spec(layout, spec)))
        except NotASubnet as exc:
            raise UserError(f"{name} (zoo) is not a subnet of the supernet: {exc}") from None
    if args.largest:
        targets.append(("largest", layout.largest_choices))
    if args.smallest:
        targets.append(("smallest", layout.smallest_choices))
    rng = np.random.default_rng(args.seed)
    targets += [(f"sample-{i}", layout.space.sample(rng)) for i in range(args.sample)]
    return targets


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_cpu_devices(args.cpu_devices)
    if not (args.arch or args.zoo or args.sample or args.largest or args.smallest):
        raise UserError("nothing to evaluate: give --arch, --zoo, --sample K, --largest or --smallest")
    run_folder = Run.open(args.supernet)
    targets = _targets(args, Layout(run_folder.config.supernet))
    trained, evaluator, data = open_evaluator(run_folder, args.calib_images, args.step)
    layout = trained.layout
    images = min(args.test_images or len(data.test_y), len(data.test_y))
    if not args.json:
        print(f"{args.supernet} (step {trained.step}), {images} test images of {data.name}", file=sys.stderr)
    for label, choices in targets:
        began = time.perf_counter()
        spec = layout.materialize(choices)
        top1 = evaluator.top1(trained.params, layout.subnet(choices), args.test_images)
        result = {
            "name": label,
            "top1": top1,
            "proxy_macs": count_macs(spec),
            "proxy_params": count_params(spec),
            "choices": layout.space.values(choices),
            "test_images": images,
            "seconds": round(time.perf_counter() - began, 2),
        }
        if args.json:
            print(json.dumps(result), flush=True)
        else:
            print(
                f"{label:24s} top-1 {top1:7.2%}   proxy {result['proxy_macs'] / 1e6:6.1f} MMACs "
                f"{result['proxy_params'] / 1e6:5.2f} M params",
                flush=True,
            )
    run_folder.close()
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
