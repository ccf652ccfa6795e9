"""`python -m nas.search --target=DEVICE`: the most accurate architecture within a latency budget.

  python -m nas.search --target=pixel4                          # budget: MobileNetV2-1.0 on pixel4
  python -m nas.search --target=pixel4,note10 --latency-ms 20   # one architecture per device
  python -m nas.search --target=pixel4 --supernet runs/default  # re-score the finalists for real

Per device: the device's latency predictor prices every candidate (exactly, in batches, from
latency_models.batch); the accuracy estimator (an MLP fitted on supernet-evaluated subnets,
nas.fit_accuracy; one for Fashion-MNIST ships with the package) scores it. Two searches run side
by side from the same seed: aging evolution for the most accurate network within the budget, and
NSGA-II for the front of accuracy against latency under the same budget. The budget is a filter
around both, not code inside them. After every generation the state is saved, so a killed search
continues with --resume and ends where an uninterrupted one would.

The supernet (and so the estimator) sees one proxy resolution; the input resolution the network
is deployed at is therefore not searched but fixed (--resolution), and the network is priced at
that resolution with 3 input channels and 1000 classes, the shape of the published models and
of the latency tables.

Writes OUT/DEVICE/arch.json (the ArchSpec with its predicted latency, estimated accuracy, MACs,
params, device profile, predictor and estimator provenance, seed), pareto.json, pareto.png and
report.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from rich.table import Table

from common.cli import ArgumentParser, UserError, int_at_least, positive_float, positive_int, run
from latency_models.device_profiles import known_targets
from latency_models.options import add_precision
from nas.options import add_supernet
from nas.search.device_search import DeviceSearch, SearchSettings, prepare_searches, run_search

PROG = "python -m nas.search"


def build_parser() -> ArgumentParser:
    d = SearchSettings(target="pixel4")
    p = ArgumentParser(prog=PROG, description="Latency-constrained evolutionary architecture search.")
    p.add_argument("--target", default=d.target, help=f"device profile(s), comma separated (default: {d.target})")
    p.add_argument("--latency-ms", type=positive_float, help="latency budget (default: the device's MobileNetV2-1.0)")
    p.add_argument("--space", default=d.space, help=f"search space (default: {d.space})")
    add_precision(p, "deployed precision")
    p.add_argument(
        "--resolution", type=int, default=d.resolution, help=f"input resolution deployed at (default: {d.resolution})"
    )
    p.add_argument(
        "--population", type=int_at_least(4), default=d.population, help=f"population of each search ({d.population})"
    )
    p.add_argument("--generations", type=positive_int, default=d.generations, help=f"generations ({d.generations})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"the same seed gives the same search (default: {d.seed})")
    p.add_argument("--estimator", help="accuracy predictor JSON (default: the bundled Fashion-MNIST one)")
    add_supernet(p, required=False, purpose="re-score the finalists with it")
    p.add_argument("--out", default="search-out", help="output folder; one subfolder per device (search-out)")
    p.add_argument("--resume", action="store_true", help="continue the searches saved in --out")
    return p


def _settings(args) -> list[SearchSettings]:
    targets = [t.strip() for t in args.target.split(",") if t.strip()]
    if not targets:
        raise UserError("--target: name at least one device")
    if len(set(targets)) != len(targets):
        raise UserError("--target: a device is named twice")
    unknown = [t for t in targets if t not in known_targets()]
    if unknown:
        raise UserError(f"unknown target {unknown[0]!r} (known: {', '.join(known_targets())})")
    shared = {k: v for k, v in vars(args).items() if k in SearchSettings.__dataclass_fields__ and k != "target"}
    return [SearchSettings(target=t, **shared) for t in targets]


def _run_all(searches: dict[str, tuple[DeviceSearch, float]], outs: dict[str, Path]) -> dict[str, dict]:
    columns = (
        TextColumn("{task.description:>8}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[best]}"),
    )
    results = {}
    with Progress(*columns, console=Console(stderr=True)) as progress:
        for target, (search, spent) in searches.items():
            task = progress.add_task(
                target, total=search.settings.generations, completed=search.evolution.generation, best=""
            )

            def advance(search: DeviceSearch, task=task) -> None:
                best = search.evolution.result()
                label = f"best {best.best_score:.2%} of {best.evaluated}" if best.best is not None else "none feasible"
                progress.update(task, advance=1, best=label)

            result = run_search(search, spent, outs[target], advance)
            result.write(outs[target])
            results[target] = result.arch
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    outs = {s.target: Path(args.out) / s.target for s in settings}
    prepared = prepare_searches(settings, list(outs.values()), args.estimator)
    searches = dict(zip(outs, prepared))
    results = _run_all(searches, outs)
    _print_summary(args, results, outs)
    return 0


def _print_summary(args, results: dict[str, dict], outs: dict[str, Path]) -> None:
    title = f"{args.space} at {args.resolution} px, {args.precision}, seed {args.seed}"
    if args.supernet:
        title += " (top-1: estimated / on the supernet)"
    table = Table(title=title)
    for column in ("device", "budget (ms)", "latency (ms)", "est. top-1", "MMACs", "params (M)"):
        table.add_column(column, justify="left" if column == "device" else "right")
    for target, r in results.items():
        top1 = f"{100 * r['estimated_top1']:.2f}%"
        if "supernet_top1" in r:
            top1 += f" / {100 * r['supernet_top1']:.2f}%"
        table.add_row(
            target,
            f"{r['budget_ms']:.2f}",
            f"{r['predicted_latency_ms']:.2f}",
            top1,
            f"{r['macs'] / 1e6:.1f}",
            f"{r['params'] / 1e6:.2f}",
        )
    Console().print(table)
    for target, r in results.items():
        budget = f"budget {r['budget_ms']:.2f} ms = {r['budget_source']}; " if args.latency_ms is None else ""
        print(f"{target}: {budget}wrote {outs[target]}/", file=sys.stderr)


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
