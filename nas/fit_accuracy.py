"""`python -m nas.fit_accuracy --supernet runs/NAME`: the accuracy predictor of a trained supernet.

  python -m nas.fit_accuracy --supernet runs/default                  # 1000 subnets, then fit
  python -m nas.fit_accuracy --supernet runs/default --subnets 1500   # evaluate 500 more, refit
  python -m nas.fit_accuracy --supernet runs/default --out nas/estimators/mbv3-fashion-mnist.json

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
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from common.cli import ArgumentParser, UserError, run
from common.files import write_atomic

PROG = "python -m nas.fit_accuracy"
DATASET = "accuracy/subnets.jsonl"
HELD_OUT = 0.2
L2_GRID = (0.01, 0.03, 0.1, 0.3)


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog=PROG, description="Evaluate subnets on a trained supernet and fit the accuracy predictor.")
    p.add_argument("--supernet", required=True, help="run folder written by python -m nas.train")
    p.add_argument("--subnets", type=int, default=1000, help="distinct subnets to evaluate in all (default: 1000)")
    p.add_argument("--val-images", type=int, default=2000, help="first N test images score each subnet (2000)")
    p.add_argument("--calib-images", type=int, default=1000, help="training images for BN recalibration (1000)")
    p.add_argument("--seed", type=int, default=0, help="which subnets are drawn, and the fit (default: 0)")
    p.add_argument("--steps", type=int, default=3000, help="optimiser steps of the fit (default: 3000)")
    p.add_argument("--out", help="predictor JSON to write (default: RUN/accuracy/predictor.json)")
    p.add_argument("--cpu-devices", default="auto", help="XLA devices on a CPU-only machine (default: auto)")
    return p


def draw_subnets(layout, names: list[str], count: int, seed: int) -> list[tuple[int, ...]]:
    """`count` subnets distinct in the dimensions the supernet sees: the largest, the smallest,
    then uniform samples in a seeded order (so a longer list extends a shorter one)."""
    index = [i for i, d in enumerate(layout.space.dimensions) if d.name in names]
    rng = np.random.default_rng([seed, 11])
    drawn, seen = [], set()
    candidates = iter([layout.largest_choices, layout.smallest_choices])
    while len(drawn) < count:
        choices = next(candidates, None) or layout.space.sample(rng)
        key = tuple(choices[i] for i in index)
        if key not in seen:
            seen.add(key)
            drawn.append(choices)
    return drawn


def read_rows(path: Path, header: dict) -> list[dict]:
    """Rows already evaluated. A last line cut short by a kill is dropped (and rewritten later)."""
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    try:
        stored = json.loads(lines[0]) if lines else None
    except json.JSONDecodeError:
        stored = None
    if stored != header:
        raise UserError(
            f"{path} was made with other settings ({stored}); use them again, or move the file away to start over"
        )
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number != len(lines):
                raise UserError(f"{path}: line {number} is not JSON") from None
    return rows


def collect(run_folder, args, names: list[str]) -> tuple[list[dict], dict]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from nas.evaluate import open_evaluator

    trained, evaluator, data = open_evaluator(run_folder, args.calib_images, None)
    if args.val_images > len(data.test_y):
        raise UserError(f"--val-images {args.val_images} exceeds the {len(data.test_y)} test images")
    layout = trained.layout
    header = {
        "kind": "platform-nas/accuracy-samples",
        "schema_version": 1,
        "supernet_step": trained.step,
        "val_images": args.val_images,
        "calib_images": args.calib_images,
        "seed": args.seed,
    }
    path = run_folder.path / DATASET
    rows = read_rows(path, header)
    subnets = draw_subnets(layout, names, args.subnets, args.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    # rewritten whole first: this drops a line torn by a kill before anything is appended
    write_atomic(path, "".join(json.dumps(line) + "\n" for line in [header, *rows]))
    todo = range(len(rows), len(subnets))
    with (
        path.open("a") as sink,
        Progress(
            TextColumn("evaluating subnets"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeRemainingColumn(),
        ) as progress,
    ):
        task = progress.add_task("subnets", total=len(subnets), completed=len(rows), rate="")
        for i in todo:
            began = time.perf_counter()
            choices = subnets[i]
            top1 = evaluator.top1(trained.params, layout.subnet(choices), args.val_images)
            row = {"index": i, "choices": list(choices), "top1": top1, "seconds": round(time.perf_counter() - began, 2)}
            sink.write(json.dumps(row) + "\n")
            sink.flush()
            os.fsync(sink.fileno())
            rows.append(row)
            progress.update(task, advance=1, rate=f"{row['seconds']:.1f} s/subnet")
    return rows[: args.subnets], header


def choose_l2(space, names, choices, top1, steps, seed) -> tuple[float, dict[str, float]]:
    """The weight penalty with the best Kendall tau on a fifth of the training subnets (the
    held-out test fifth is not looked at), from a small grid."""
    from nas.accuracy_predictor import fit, rank_metrics

    order = np.random.default_rng([seed, 17]).permutation(len(top1))
    cut = len(top1) // 5
    val, train = order[:cut], order[cut:]
    tried = {}
    for l2 in L2_GRID:
        predictor = fit(space, names, choices[train], top1[train], steps=steps, l2=l2, seed=seed)
        tried[str(l2)] = rank_metrics(predictor.scorer(space)(choices[val]), top1[val])["kendall_tau"]
    # a penalty so strong that every prediction is the same has no tau (NaN): never chosen
    return float(max(tried, key=lambda k: -np.inf if np.isnan(tried[k]) else tried[k])), tried


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    for flag in ("subnets", "val_images", "calib_images", "steps"):
        if getattr(args, flag) < (10 if flag == "subnets" else 1):
            raise UserError(f"--{flag.replace('_', '-')}: must be >= {10 if flag == 'subnets' else 1}")
    from nas.train import configure_cpu_devices

    configure_cpu_devices(args.cpu_devices)

    from nas.accuracy_predictor import fit, rank_metrics, supernet_dimensions
    from nas.run import Run

    run_folder = Run.open(args.supernet)
    config = run_folder.config
    space = config.supernet.build_space()
    names = supernet_dimensions(space)
    rows, header = collect(run_folder, args, names)
    run_folder.close()

    choices = np.array([r["choices"] for r in rows])
    top1 = np.array([r["top1"] for r in rows])
    order = np.random.default_rng([args.seed, 13]).permutation(len(rows))
    cut = int(round(len(rows) * HELD_OUT))
    test, train = order[:cut], order[cut:]
    info = {
        "supernet": {
            "run": str(Path(args.supernet)),
            "step": header["supernet_step"],
            "data": config.data,
            "train": config.train.__dict__,
            "proxy_resolution": config.supernet.resolution,
        },
        "samples": {
            "subnets": len(rows),
            "val_images": args.val_images,  # the first N of the test split
            "calib_images": args.calib_images,
            "evaluation_seconds": round(float(sum(r["seconds"] for r in rows)), 1),
            "top1_range": [float(top1.min()), float(top1.max())],
        },
        "made_by": f"{PROG} --supernet {args.supernet} --subnets {args.subnets} --seed {args.seed}",
        "date": datetime.date.today().isoformat(),
    }
    l2, tried = choose_l2(space, names, choices[train], top1[train], args.steps, args.seed)
    info["l2_selection"] = tried
    predictor = fit(space, names, choices[train], top1[train], steps=args.steps, l2=l2, seed=args.seed, info=info)
    held_out = rank_metrics(predictor.scorer(space)(choices[test]), top1[test])
    predictor.info["held_out"] = held_out
    out = Path(args.out) if args.out else run_folder.path / "accuracy" / "predictor.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    predictor.save(out)
    print(
        f"{len(train)} subnets fitted, {len(test)} held out: RMSE {held_out['rmse_points']:.2f} points, "
        f"Kendall tau {held_out['kendall_tau']:.3f}; top-1 spans {top1.min():.2%}..{top1.max():.2%}\nwrote {out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    run(main, PROG)
