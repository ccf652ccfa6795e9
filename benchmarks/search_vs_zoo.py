"""Does the searched architecture beat the published models within its budget, trained alike? Run once.

  python benchmarks/search_vs_zoo.py [--target pixel4] [--epochs 2] [--jobs 2] [--out runs/search_vs_zoo]

1. Runs the main job, `python -m nas.search --target=TARGET` (budget: MobileNetV2-1.0's predicted
   latency on the target; bundled estimator; seed 0), into OUT/search/, unless --arch names an
   arch.json it wrote.
2. Takes every zoo model whose predicted latency on the target (same predictor, fp32) is within
   that budget.
3. Trains each of them and the searched architecture from scratch with one recipe: the
   deployed network as specified (every layer, width and stride kept) fed Fashion-MNIST's 28 px
   single-channel images with a 10-way classifier, the supernet's default training settings
   (batch, SGD schedule, label smoothing, flip augmentation), --epochs epochs, one seed.
4. Reports top-1 on test images [2000, 10000): the search's estimator was fitted on [0, 2000).

The zoo models lie outside the search space, so no estimator or supernet can score them; this
benchmark trains them. Results go to OUT/results.jsonl one network at a time, so an interrupted
run continues where it stopped when started again with the same settings. --jobs N trains N
networks at once, each pinned to its own core (one XLA CPU device each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from latency_models.device_profiles import load_predictor
from nas.options import DEFAULT_CALIB_IMAGES
from nas.search.device_search import SearchSettings, search_device
from nas.training.data import Normalizer, load_dataset
from nas.training.evaluation import Evaluator, calibration_images, eval_batch, plain_forward
from nas.training.run import TrainConfig
from nas.training.standalone import for_data, train_alone
from nas.training.step import make_mesh
from nas.training.xla import configure_cpu_devices
from search_spaces import zoo
from search_spaces.arch_spec import ArchSpec
from search_spaces.graph import count_macs, count_params

RESULTS = "results.jsonl"
VALIDATION_IMAGES = 2000  # the first test images, which the estimator was fitted on


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", default="pixel4")
    p.add_argument("--arch", help="arch.json of a finished search (default: run the main job's search)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--train-images", type=int, help="train on the first N images only (quick checks)")
    p.add_argument("--models", help="comma list: only these zoo models ('none': the searched network alone)")
    p.add_argument("--jobs", type=int, default=min(2, len(os.sched_getaffinity(0))))
    p.add_argument("--out", default="runs/search_vs_zoo")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def contenders(args, out: Path) -> tuple[dict, list[dict]]:
    """The settings the results depend on, and the networks to train (searched first)."""

    arch_path = Path(args.arch) if args.arch else out / "search" / args.target / "arch.json"
    if not arch_path.exists():  # the main job, as `python -m nas.search --target T --seed S` runs it
        searched = out / "search" / args.target
        search_device(SearchSettings(target=args.target, seed=args.seed), searched).write(searched)
    arch = json.loads(arch_path.read_text())
    budget = arch["budget_ms"]
    predictor = load_predictor(args.target, "fp32")
    nets = [
        {
            "name": f"{'hand-picked' if 'hand_picked' in arch else 'searched'} ({arch['spec_hash'][:12]})",
            "source": str(arch_path),
            "predicted_latency_ms": arch["predicted_latency_ms"],
        }
    ]
    wanted = set(args.models.split(",")) if args.models else None
    for name in zoo.names():
        latency = predictor.spec_ms(zoo.get(name), "fp32")
        if latency <= budget and (wanted is None or name in wanted):
            nets.append({"name": name, "source": "zoo", "predicted_latency_ms": latency})
    ArchSpec.load(str(arch_path))  # fails early, with one line, on a file that is not a search result
    settings = {
        "target": args.target,
        "budget_ms": budget,
        "budget_source": arch["budget_source"],
        "searched_spec_hash": arch["spec_hash"],
        "data": args.data,
        "train_images": args.train_images,
        "epochs": args.epochs,
        "seed": args.seed,
        "test_images": f"[{VALIDATION_IMAGES}, end)",
    }
    return settings, nets


def read_results(path: Path) -> tuple[dict | None, dict[str, dict]]:
    if not path.exists():
        return None, {}
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines[0]["settings"], {row["name"]: row for row in lines[1:]}


def train_and_score(net: dict, data, args) -> dict:

    spec = ArchSpec.load(net["source"]) if net["source"] != "zoo" else zoo.get(net["name"])
    spec = for_data(spec, data)
    train = TrainConfig(data=args.data, seed=args.seed, train_images=args.train_images)
    normalizer = Normalizer.fit(data.train_x)
    mesh = make_mesh()
    began = time.perf_counter()
    graphdef, params, stats = train_alone(spec, data, train, normalizer, mesh, args.epochs, args.seed)
    calib = calibration_images(data.train_x, DEFAULT_CALIB_IMAGES, args.seed)
    test_x, test_y = data.test_x[VALIDATION_IMAGES:], data.test_y[VALIDATION_IMAGES:]
    evaluator = Evaluator(
        graphdef, stats, mesh, normalizer, calib, test_x, test_y, eval_batch(mesh), forward=plain_forward
    )
    top1 = evaluator.top1(params, None)
    return {
        **net,
        "trained_macs": count_macs(spec),
        "trained_params": count_params(spec),
        "top1": top1,
        "seconds": round(time.perf_counter() - began, 1),
    }


def work(args) -> None:
    """One worker: trains its share of the networks not trained yet, appending each result."""
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[args.worker % len(cores)]})

    configure_cpu_devices(1)
    out = Path(args.out)
    _, done = read_results(out / RESULTS)
    _, nets = contenders(args, out)

    # the same training images as nas.train's --train-images would take, loaded once per worker
    data = load_dataset(args.data).subset(args.train_images, args.seed)
    for net in nets[args.worker :: args.jobs]:
        if net["name"] in done:
            continue
        row = train_and_score(net, data, args)
        with open(out / RESULTS, "a") as f:  # one short line per write: appends do not interleave
            f.write(json.dumps(row) + "\n")
        print(f"{row['name']:>28} {row['top1']:7.2%} ({row['seconds']:.0f} s)", flush=True)


def report(settings: dict, rows: list[dict]) -> None:

    print(
        f"\n{settings['target']}, budget {settings['budget_ms']:.2f} ms ({settings['budget_source']}); "
        f"{settings['epochs']} epoch(s) each on {settings['data']}, seed {settings['seed']}, "
        f"top-1 on test images {settings['test_images']}"
    )
    print(f"{'network':>28} {'latency (ms)':>12} {'MMACs@28':>9} {'params (M)':>10} {'top-1':>7}")
    for row in sorted(rows, key=lambda r: -r["top1"]):
        print(
            f"{row['name']:>28} {row['predicted_latency_ms']:12.2f} {row['trained_macs'] / 1e6:9.1f} "
            f"{row['trained_params'] / 1e6:10.2f} {row['top1']:7.2%}"
        )
    searched = next(r for r in rows if r["source"] != "zoo")
    zoo_rows = [r for r in rows if r["source"] == "zoo"]
    p, n = searched["top1"], len(load_dataset(settings["data"]).test_y) - VALIDATION_IMAGES
    print(f"one top-1 on {n} images has a binomial standard error of {100 * (p * (1 - p) / n) ** 0.5:.2f} points")
    if zoo_rows:
        best = max(zoo_rows, key=lambda r: r["top1"])
        verdict = "beats" if searched["top1"] > best["top1"] else "does NOT beat"
        print(
            f"{searched['name']} {searched['top1']:.2%} {verdict} every zoo model within the budget "
            f"(best of {len(zoo_rows)}: {best['name']} {best['top1']:.2%}, margin "
            f"{100 * (searched['top1'] - best['top1']):+.2f} points)"
        )


def main() -> int:
    args = parse_args()
    if args.worker is not None:
        work(args)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings, nets = contenders(args, out)
    stored, done = read_results(out / RESULTS)
    if stored is not None and stored != settings:
        print(
            f"error: {out / RESULTS} holds results for other settings ({stored}); pass another --out", file=sys.stderr
        )
        return 2
    if stored is None:
        (out / RESULTS).write_text(json.dumps({"settings": settings}) + "\n")
    todo = [n["name"] for n in nets if n["name"] not in done]
    print(f"{len(nets)} networks ({len(todo)} to train) with {args.jobs} job(s): {', '.join(todo)}", flush=True)
    if todo:
        argv = [a for a in sys.argv[1:]]
        if args.arch is None:
            argv += ["--arch", str(out / "search" / args.target / "arch.json")]
        workers = [subprocess.Popen([sys.executable, __file__, *argv, "--worker", str(k)]) for k in range(args.jobs)]
        codes = [w.wait() for w in workers]
        if any(codes):
            print(f"error: a worker failed (exit codes {codes}); run again to continue", file=sys.stderr)
            return 1
    _, done = read_results(out / RESULTS)
    report(settings, [done[n["name"]] for n in nets])
    return 0


if __name__ == "__main__":
    sys.exit(main())
