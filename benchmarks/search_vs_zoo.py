"""Does the searched architecture beat the published models at equal predicted latency, trained
alike? Run once.

  python benchmarks/search_vs_zoo.py [--target pixel4] [--epochs 2] [--jobs 2] [--out runs/search_vs_zoo]

What is compared, in which form, and why: the own-supernet path. The bundled `fashion-mnist`
estimator scores the proxy form this project's Fashion-MNIST supernet trains (mbv3 with 8x
downsampling and half the channels, fed 28 px single-channel images, 10 classes), and a search
with it prices exactly that network on the target: the network it chooses is the one nas.export
exports and the one trained here. So every network below is compared in the form it is priced
in, trained, and would be deployed in: fed 28 px, 1 channel, 10 classes.

1. Runs the search, `search_device(SearchSettings(target=TARGET, seed=SEED, estimator="fashion-mnist"))`
   (budget: MobileNetV2-1.0 fed that same input, its layers as published, predicted on the
   target), into OUT/search/TARGET/, unless --arch names an arch.json of such a search (one whose
   "form" is not "proxy" is refused: it would not be priced and trained alike).
2. Prices every zoo model as the search does (`published_form(name, scope)` with the search
   estimator's scope: the model as published, every layer, width and stride kept, fed 28 px,
   1 channel, 10 classes) with the same latency predictor, and takes those within the budget.
3. Trains each of them and the searched network from scratch, each exactly as priced (the spec
   priced is the spec trained; a network the data would change is refused), with one recipe:
   the supernet's default training settings (batch, SGD schedule, label smoothing, flip
   augmentation), --epochs epochs, one seed.
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

from common.cli import UserError, run
from common.files import read_json_lines
from latency_models.profiles.registry import load_predictor
from nas.options import DEFAULT_CALIB_IMAGES
from nas.search.preparation import load_estimator, published_form
from nas.search.record import SearchRecord
from nas.search.run import search_device
from nas.search.settings import SearchSettings
from nas.training.data import Dataset, Normalizer, load_dataset
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
ESTIMATOR = "fashion-mnist"  # the bundled estimator of this project's supernet: proxy form
DEFAULT_TARGET = "pixel4"
PROG = "search_vs_zoo"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--target", help=f"default: {DEFAULT_TARGET}, or the target of --arch")
    p.add_argument("--arch", help=f"arch.json of a finished {ESTIMATOR} search (default: run that search)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", default="fashion-mnist")
    p.add_argument("--train-images", type=int, help="train on the first N images only (quick checks)")
    p.add_argument("--models", help="comma list: only these zoo models ('none': the searched network alone)")
    p.add_argument("--jobs", type=int, default=min(2, len(os.sched_getaffinity(0))))
    p.add_argument("--out", default="runs/search_vs_zoo")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    return p.parse_args(argv)


def searched_arch(args, out: Path) -> tuple[Path, SearchRecord]:
    """The search result compared (run first unless --arch names one), refused unless it is a
    proxy-form network searched for the target asked."""
    target = args.target or DEFAULT_TARGET
    arch_path = Path(args.arch) if args.arch else out / "search" / target / "arch.json"
    if not arch_path.exists():
        if args.arch:
            raise UserError(f"--arch {arch_path}: no such file")
        searched = out / "search" / target
        settings = SearchSettings(target=target, seed=args.seed, estimator=ESTIMATOR, resume=True)
        search_device(settings, searched)  # writes its result into searched
    record = SearchRecord.load(arch_path)  # a SearchError (one line) on a file that is not a search result
    form = record.accuracy.form or "unstated"  # a schema-1 arch.json does not say
    if form != "proxy":
        raise UserError(
            f"{arch_path}: a network in the {form!r} form, not 'proxy' (the form trained here):"
            f" it would not be priced and trained alike; search with --estimator {ESTIMATOR}"
        )
    if args.target and args.target != record.target.name:
        raise UserError(f"{arch_path} was searched for {record.target.name}, not --target {args.target}")
    return arch_path, record


def contenders(args, out: Path) -> tuple[dict, list[dict]]:
    """The settings the results depend on, and the networks to train (searched first), each
    with the spec it is priced as (`spec`, dropped before a result is written)."""
    arch_path, record = searched_arch(args, out)
    target, precision = record.target.name, record.target.precision
    estimator_name = record.estimator.name
    estimator, _ = load_estimator(SearchSettings(target=target, precision=precision, estimator=estimator_name))
    scope = estimator.scope
    if scope.form != "proxy":
        raise UserError(f"{arch_path}: its estimator {estimator_name} scores the {scope.form} form, not the proxy")
    budget = record.budgets.latency.ms
    predictor = load_predictor(target, precision)
    searched = record.choice.spec
    nets = [
        {
            "name": f"searched ({record.choice.spec_hash[:12]})",
            "source": str(arch_path),
            "predicted_latency_ms": predictor.spec_ms(searched, precision),
            "spec": searched,
        }
    ]
    wanted = set(args.models.split(",")) if args.models else None
    for name in zoo.names():
        spec = published_form(name, scope)
        latency = predictor.spec_ms(spec, precision)
        if latency <= budget and (wanted is None or name in wanted):
            nets.append({"name": name, "source": "zoo", "predicted_latency_ms": latency, "spec": spec})
    for net in nets:
        net["spec_hash"] = net["spec"].content_hash()
    settings = {
        "target": target,
        "precision": precision,
        "budget_ms": budget,
        "budget_source": record.budgets.latency.source,
        "searched_spec_hash": record.choice.spec_hash,
        "form": scope.form,
        "input": f"{scope.resolutions[0]} px, {scope.in_channels} channel(s), {scope.classes} classes",
        "estimator": {"name": estimator_name, "sha256": record.estimator.sha256},
        "data": args.data,
        "train_images": args.train_images,
        "epochs": args.epochs,
        "seed": args.seed,
        "test_images": f"[{VALIDATION_IMAGES}, end)",
    }
    return settings, nets


def as_trained(net: dict, data: Dataset) -> ArchSpec:
    """The spec trained: the one priced, unchanged. `for_data` (the standalone trainer's fit of
    a network to the data's input and classes) must leave it as it is; anything else is refused."""
    priced = net["spec"]
    trained = for_data(priced, data)
    if trained != priced or trained.content_hash() != net["spec_hash"]:
        raise UserError(
            f"{net['name']}: priced for {priced.resolution} px, {priced.in_channels} channel(s), "
            f"{priced.classifier.out_ch} classes, but {data.name} would train it at {data.resolution} px, "
            f"{data.channels} channel(s), {data.num_classes} classes: not the network priced"
        )
    return priced


def read_results(path: Path) -> tuple[dict | None, dict[str, dict]]:
    if not path.exists():
        return None, {}
    lines = [record for _, record in read_json_lines(path, UserError).records]
    return lines[0]["settings"], {row["name"]: row for row in lines[1:]}


def train_and_score(net: dict, data: Dataset, args) -> dict:

    spec = as_trained(net, data)
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
        **{k: v for k, v in net.items() if k != "spec"},
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


def report(settings: dict, rows: list[dict], test_images: int) -> None:

    print(
        f"\n{settings['target']}, budget {settings['budget_ms']:.2f} ms ({settings['budget_source']});\n"
        f"every network priced and trained in the {settings['form']} form ({settings['input']}); "
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
    p, n = searched["top1"], test_images - VALIDATION_IMAGES
    print(f"one top-1 on {n} images has a binomial standard error of {100 * (p * (1 - p) / n) ** 0.5:.2f} points")
    if zoo_rows:
        best = max(zoo_rows, key=lambda r: r["top1"])
        verdict = "beats" if searched["top1"] > best["top1"] else "does NOT beat"
        print(
            f"{searched['name']} {searched['top1']:.2%} {verdict} every zoo model within the budget "
            f"(best of {len(zoo_rows)}: {best['name']} {best['top1']:.2%}, margin "
            f"{100 * (searched['top1'] - best['top1']):+.2f} points)"
        )


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        work(args)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    settings, nets = contenders(args, out)
    data = load_dataset(args.data)
    for net in nets:  # refused here, before any training, rather than in a worker
        as_trained(net, data)
    stored, done = read_results(out / RESULTS)
    if stored is not None and stored != settings:
        print(
            f"error: {out / RESULTS} holds results for other settings ({stored}); pass another --out", file=sys.stderr
        )
        return 2
    if stored is None:
        (out / RESULTS).write_text(json.dumps({"settings": settings}) + "\n")
    left_out = sorted(set(args.models.split(",")) - {"none"} - {n["name"] for n in nets}) if args.models else []
    if left_out:
        print(f"not compared (over the {settings['budget_ms']:.2f} ms budget, or no zoo model): {', '.join(left_out)}")
    todo = [n["name"] for n in nets if n["name"] not in done]
    print(f"{len(nets)} networks ({len(todo)} to train) with {args.jobs} job(s): {', '.join(todo)}", flush=True)
    if todo:
        argv = list(sys.argv[1:] if argv is None else argv)
        if args.arch is None:
            argv += ["--arch", str(out / "search" / settings["target"] / "arch.json")]
        workers = [subprocess.Popen([sys.executable, __file__, *argv, "--worker", str(k)]) for k in range(args.jobs)]
        codes = [w.wait() for w in workers]
        if any(codes):
            print(f"error: a worker failed (exit codes {codes}); run again to continue", file=sys.stderr)
            return 1
    _, done = read_results(out / RESULTS)
    report(settings, [done[n["name"]] for n in nets], len(data.test_y))
    return 0


if __name__ == "__main__":
    run(main, PROG)
