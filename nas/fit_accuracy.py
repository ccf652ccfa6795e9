"""`python -m nas.fit_accuracy --supernet runs/NAME`: the accuracy predictor of a trained supernet.

  python -m nas.fit_accuracy --supernet runs/default                  # 1000 subnets, then fit
  python -m nas.fit_accuracy --supernet runs/default --subnets 1500   # evaluate 500 more, refit
  python -m nas.fit_accuracy --supernet runs/default --calib-images 1000 \
      --out nas/accuracy/estimators/mbv3-fashion-mnist.json          # the bundled one, as it was made

Step 1 evaluates distinct subnets drawn uniformly from the space (the largest and the smallest
first) exactly as `nas.evaluate` does: batch-norm recalibration on training images, then top-1.
Each result is appended to RUN/accuracy/subnets.jsonl as it comes, so a killed run loses at most
the subnet in progress and the next call carries on. The validation images are the first
--val-images of the test split; anything reported as a final test accuracy should use the rest.

Step 2 holds out a seeded fifth of the subnets, fits the MLP on the others, reports held-out RMSE
and Kendall's tau, and writes the predictor (that same fit) with its provenance.
"""

from __future__ import annotations

import datetime
import sys
from pathlib import Path

from rich.console import Console

from common.cli import ArgumentParser, int_at_least, positive_int, run, seed_int
from common.progress import progress_bar
from nas.accuracy.estimator import supernet_dimensions
from nas.accuracy.fitting import Sampling, collect, fit_held_out
from nas.options import add_calib_images, add_cpu_devices, add_supernet
from nas.training.run import Run
from nas.training.xla import configure_cpu_devices

PROG = "python -m nas.fit_accuracy"


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Evaluate subnets on a trained supernet and fit the accuracy predictor.")
    add_supernet(p, required=True, purpose="its subnets are evaluated")
    p.add_argument(
        "--subnets", type=int_at_least(10), default=1000, help="distinct subnets to evaluate in all (default: 1000)"
    )
    p.add_argument("--val-images", type=positive_int, default=2000, help="first N test images score each subnet (2000)")
    add_calib_images(p)
    p.add_argument("--seed", type=seed_int, default=0, help="which subnets are drawn, and the fit (default: 0)")
    p.add_argument("--steps", type=positive_int, default=3000, help="optimiser steps of the fit (default: 3000)")
    p.add_argument("--out", help="predictor JSON to write (default: RUN/accuracy/predictor.json)")
    add_cpu_devices(p)
    return p


def _evaluate_subnets(run_folder: Run, sampling: Sampling, names: list[str]) -> tuple[list[dict], dict]:
    bar = progress_bar(Console(), status=True)
    task = bar.add_task("evaluating subnets", total=sampling.subnets, status="")

    def progress(done: int, total: int, seconds: float) -> None:
        bar.start()  # on the first report: a run refused before any work shows no bar
        bar.update(task, completed=done, total=total, status=f"{seconds:.1f} s/subnet" if seconds else "")

    try:
        return collect(run_folder, sampling, names, progress)
    finally:
        bar.stop()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_cpu_devices(args.cpu_devices)
    sampling = Sampling(args.subnets, args.val_images, args.calib_images, args.seed)
    run_folder = Run.open(args.supernet)
    config = run_folder.config
    space = config.supernet.build_space()
    names = supernet_dimensions(space)
    rows, header = _evaluate_subnets(run_folder, sampling, names)
    run_folder.close()
    info = {
        "supernet": {
            "run": str(Path(args.supernet)),
            "step": header["supernet_step"],
            "data": config.data,
            "train": config.train.__dict__,
            "proxy_resolution": config.supernet.resolution,
            "space_args": config.supernet.space_args,
        },
        "samples": {
            "subnets": len(rows),
            "val_images": args.val_images,  # the first N of the test split
            "calib_images": args.calib_images,
            "evaluation_seconds": round(float(sum(r["seconds"] for r in rows)), 1),
        },
        "made_by": f"{PROG} --supernet {args.supernet} --subnets {args.subnets} "
        f"--calib-images {args.calib_images} --seed {args.seed}",
        "date": datetime.date.today().isoformat(),
    }
    predictor, fitted, held = fit_held_out(space, names, rows, args.seed, args.steps, info)
    held_out = predictor.info["held_out"]
    out = Path(args.out) if args.out else run_folder.path / "accuracy" / "predictor.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    predictor.save(out)
    low, high = predictor.info["samples"]["top1_range"]
    print(
        f"{fitted} subnets fitted, {held} held out: RMSE {held_out['rmse_points']:.2f} points, "
        f"Kendall tau {held_out['kendall_tau']:.3f}; top-1 spans {low:.2%}..{high:.2%}\nwrote {out}",
        file=sys.stderr,
    )
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
