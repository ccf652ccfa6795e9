"""`python -m nas.search --target=DEVICE`: the most accurate architecture within a latency budget
and size bounds.

  python -m nas.search --target=pixel4                          # budget: MobileNetV2-1.0 on pixel4
  python -m nas.search --target=note10 --latency-ms 25          # Once-for-All's tutorial setting
  python -m nas.search --target=pixel4,note10 --latency-ms 20   # one architecture per device
  python -m nas.search --target=pixel4 --estimator fashion-mnist --supernet runs/default
  python -m nas.search --target=pixel4 --precision int8 --max-model-mb 5   # size alone bounds it

Per device: the device's latency predictor prices every candidate (exactly, in batches, from
latency_models.predictor.batch); the accuracy estimator scores it. Two searches run side by side from the
same seed: aging evolution for the most accurate network within the budget, and NSGA-II for the
front of accuracy against latency under the same budget. The budget is a filter around both, not
code inside them. After every generation the state is saved, so a killed search continues with
--resume and ends where an uninterrupted one would.

Estimators (--estimator NAME or a JSON file) declare what they score, and the search prices
exactly those networks:
  imagenet       (default) Once-for-All's ImageNet predictor: mbv3 at width 1.2, deployed form
                 (3 channels, 1000 classes), the input resolution searched over 160..224 px. Its
                 raw score (top-1 with weights inherited from Once-for-All's supernet) is also
                 mapped onto the top-1 of Once-for-All's fine-tuned networks, with that mapping's
                 error, and the choice is set beside the published models near the budget.
  fashion-mnist  fitted on this project's Fashion-MNIST supernet (nas.fit_accuracy): the proxy
                 form that supernet trains (28 px, 1 channel, 10 classes), the network nas.export
                 exports; the default budget is MobileNetV2-1.0 fed that same input.
Asking an estimator for another width, resolution or form exits 2 naming both.

Size bounds (--max-flash-kb or --max-model-mb, --max-sram-kb, --max-params-m, --max-macs-m) apply
alone or with --latency-ms; with one given and no --latency-ms, latency is not bounded. Flash and
SRAM are counted from the spec (latency_models.footprint) in the deployment searched; batch
tables screen the candidates, that count decides, and NSGA-II's front is drawn against the bound
that rejects the most networks.

Writes OUT/DEVICE/arch.json (the ArchSpec with its predicted latency, estimated accuracy, MACs,
params, its flash and arena in every deployment, the bounds and which binds, device profile,
predictor and estimator provenance, seed), pareto.json, pareto.png and report.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from common.cli import (
    ArgumentParser,
    UserError,
    float_in,
    int_at_least,
    positive_float,
    positive_int,
    run,
    seed_int,
)
from common.progress import progress_bar
from latency_models.measurement.first_use import host_predictor
from latency_models.options import add_precision
from latency_models.profiles.registry import known_targets
from nas.accuracy.estimator import BUNDLED, DEFAULT_ESTIMATOR
from nas.accuracy.scope import FORMS
from nas.options import add_supernet
from nas.search.budgets import KB, MB, shown
from nas.search.preparation import DeviceSearch, host_specs, prepare_searches
from nas.search.record import SearchRecord
from nas.search.report import top1_text
from nas.search.run import run_search
from nas.search.settings import SearchSettings

PROG = "python -m nas.search"
# Bounds on work asked for by mistake: the defaults (200 x 50, ~10,000 candidates) search in
# about 8 s here, so these maxima (10^9 candidates) would take days.
MAX_POPULATION = 100_000
MAX_GENERATIONS = 10_000
# Bounds no network here comes near: a larger one is a mistake (a unit confused), not a bound.
MAX_BYTES = 64 * 1024 * MB
MAX_COUNT_M = 1e6


def build_parser() -> ArgumentParser:
    d = SearchSettings(target="pixel4")
    p = ArgumentParser(
        prog=PROG,
        description="Evolutionary architecture search within a latency budget and size bounds.",
        epilog=__doc__[__doc__.index("Estimators (") : __doc__.index("Writes OUT")],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--target", default=d.target, help=f"device profile(s), comma separated (default: {d.target})")
    p.add_argument(
        "--latency-ms",
        type=positive_float,
        help="latency budget (default: the device's MobileNetV2-1.0, unless a size bound below is given: then "
        "latency is bounded only if this is given)",
    )
    size = p.add_argument_group(
        "size bounds",
        "Each alone or with the others and --latency-ms; KB = 1024 bytes, MB = 1024 KB. Flash and SRAM are "
        "counted in the deployment searched (--precision, --integer-io) from the spec: the .tflite nas.export "
        "writes (to a few hundred bytes) and the activation arena TensorFlow Lite Micro plans for it (to the "
        "byte; its persistent part comes on top).",
    )
    flash = size.add_mutually_exclusive_group()
    flash.add_argument("--max-flash-kb", type=float_in(0, MAX_BYTES / KB, low_open=True, high_open=False),
                       help="at most this much flash: the model file")  # fmt: skip
    flash.add_argument("--max-model-mb", type=float_in(0, MAX_BYTES / MB, low_open=True, high_open=False),
                       help="the same bound in MB")  # fmt: skip
    size.add_argument("--max-sram-kb", type=float_in(0, MAX_BYTES / KB, low_open=True, high_open=False),
                      help="at most this peak SRAM: TFLM's activation arena")  # fmt: skip
    size.add_argument("--max-params-m", type=float_in(0, MAX_COUNT_M, low_open=True, high_open=False),
                      help="at most this many million parameters")  # fmt: skip
    size.add_argument("--max-macs-m", type=float_in(0, MAX_COUNT_M, low_open=True, high_open=False),
                      help="at most this many million multiply-accumulates")  # fmt: skip
    size.add_argument("--integer-io", action="store_true",
                      help="int8 input and output (--precision int8), as a microcontroller is fed")  # fmt: skip
    p.add_argument("--space", default=d.space, help=f"search space (default: {d.space})")
    add_precision(p, "deployed precision")
    p.add_argument(
        "--estimator",
        help=f"accuracy estimator: a bundled name ({', '.join(BUNDLED)}) or a JSON file (default: {DEFAULT_ESTIMATOR})",
    )
    p.add_argument(
        "--resolution", type=positive_int, help="input resolution (default: every one the estimator scores is searched)"
    )
    p.add_argument("--width", type=positive_float, help="width multiplier (default: the estimator's, else searched)")
    p.add_argument("--form", choices=FORMS, help="network form priced and scored (default: the estimator's)")
    p.add_argument(
        "--population",
        type=int_at_least(4, MAX_POPULATION),
        default=d.population,
        help=f"population of each search ({d.population}; at most {MAX_POPULATION:,})",
    )
    p.add_argument(
        "--generations",
        type=int_at_least(1, MAX_GENERATIONS),
        default=d.generations,
        help=f"generations ({d.generations}; at most {MAX_GENERATIONS:,})",
    )
    p.add_argument(
        "--seed", type=seed_int, default=d.seed, help=f"the same seed gives the same search (default: {d.seed})"
    )
    add_supernet(p, required=False, purpose="re-score the finalists with it")
    p.add_argument(
        "--out",
        default="search-out",
        help="output folder (search-out); one subfolder per device, which a new search makes or finds empty "
        "(other files in OUT are left alone), held by OUT/DEVICE.lock from the start until the result is "
        "written: a second writer is refused (exit 2, naming the holder)",
    )
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
    if args.integer_io and args.precision != "int8":
        raise UserError("--integer-io: only an int8 model has integer input and output (add --precision int8)")
    shared = {k: v for k, v in vars(args).items() if k in SearchSettings.__dataclass_fields__ and k != "target"}
    flash_kb = args.max_flash_kb if args.max_model_mb is None else args.max_model_mb * 1024
    shared.update(
        max_flash_bytes=_count(flash_kb, KB),
        max_sram_bytes=_count(args.max_sram_kb, KB),
        max_params=_count(args.max_params_m, 1e6),
        max_macs=_count(args.max_macs_m, 1e6),
    )
    return [SearchSettings(target=t, **shared) for t in targets]


def _count(value: float | None, unit: float) -> int | None:
    """A bound given in `unit`s as a whole count (bytes, params, MACs), rounded down."""
    return None if value is None else max(1, int(value * unit))


def _run_all(searches: dict[str, tuple[DeviceSearch, float]], outs: dict[str, Path]) -> dict[str, SearchRecord]:
    results = {}
    with progress_bar(Console(stderr=True), status=True, remaining=False) as progress:
        for target, (search, spent) in searches.items():
            task = progress.add_task(
                f"{target:>8}", total=search.settings.generations, completed=search.evolution.generation, status=""
            )

            def advance(search: DeviceSearch, task=task) -> None:
                best = search.evolution.result()
                label = f"best {best.best_score:.2%} of {best.evaluated}" if best.best is not None else "none feasible"
                progress.update(task, advance=1, status=label)

            results[target] = run_search(search, spent, outs[target], advance)  # written into outs[target]
    return results


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = _settings(args)
    outs = {s.target: Path(args.out) / s.target for s in settings}
    for s in settings:
        if s.target == "host":  # measures the blocks this machine's table lacks first (once), saying so
            host_predictor(host_specs(s), s.precision)
    prepared = prepare_searches(settings, list(outs.values()))  # each holds its folder's lock
    try:
        results = _run_all(dict(zip(outs, prepared)), outs)
    finally:
        for search, _ in prepared:
            search.release()
    _print_summary(args, results, outs)
    return 0


def _print_summary(args, results: dict[str, SearchRecord], outs: dict[str, Path]) -> None:
    first = next(iter(results.values()))
    mapped = first.accuracy.mapped is not None
    title = f"{args.space}, {first.accuracy.form} form, {args.precision}, seed {args.seed}"
    if args.supernet:
        title += " (top-1: estimated / on the supernet)"
    table = Table(title=title)
    top1_column = "ImageNet top-1 (mapped ± error, raw)" if mapped else "est. top-1"
    columns = ("device", "bounds (binds*)", "latency (ms)", "px", top1_column, "MMACs", "params (M)",
               "flash fp32 / int8 (MB)", "SRAM int8 (KB)")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("device", "bounds (binds*)") else "right")
    for target, r in results.items():
        top1 = top1_text(r)
        if r.accuracy.supernet_top1 is not None:
            top1 += f" / {100 * r.accuracy.supernet_top1:.2f}%"
        bounds = ", ".join(
            shown(name, limit) + ("*" if name == r.budgets.binding and len(r.budgets.all) > 1 else "")
            for name, limit in r.budgets.all.items()
        )
        row = [target, bounds, f"{r.costs.latency_ms:.2f}", str(r.choice.resolution), top1]
        table.add_row(*row, f"{r.costs.macs / 1e6:.1f}", f"{r.costs.params / 1e6:.2f}", *_sizes(r.costs))
    Console(width=None if Console().is_terminal else 150).print(table)
    for target, r in results.items():
        if r.comparison is not None:
            print(f"{target}: {_against_published(r)}")
    for target, r in results.items():
        latency = r.budgets.latency
        budget = f"budget {latency.ms:.2f} ms = {latency.source}; " if latency and args.latency_ms is None else ""
        print(f"{target}: {budget}wrote {outs[target]}/", file=sys.stderr)
    if mapped:
        print(
            f"ImageNet top-1: {first.accuracy.mapped.top1_is}, mapped from the raw estimate "
            f"({first.accuracy.estimated_top1_is}); see report.md.",
            file=sys.stderr,
        )


def _sizes(priced) -> list[str]:
    """fp32 and int8 flash, and int8 peak SRAM, of the choice's or a published model's costs."""
    fp32, int8 = priced.of("fp32"), priced.of("int8")
    if fp32 is None or int8 is None:
        return ["-", "-"]
    return [f"{fp32.flash_bytes / MB:.2f} / {int8.flash_bytes / MB:.2f}", f"{int8.arena_bytes / KB:.0f}"]


def _against_published(record: SearchRecord) -> str:
    comparison = record.comparison
    best = comparison.best_at_or_under
    window = f"±{comparison.window:.0%} of the budget"
    if not comparison.near_budget:
        return f"no published model with a published top-1 is predicted within {window}"
    if best is None:
        return f"no published model within {window} is as fast as the choice"
    caveat = " (mapped top-1 extrapolated)" if record.accuracy.mapped.extrapolated else ""
    flash, sram = _sizes(best)
    return (
        f"{comparison.gain_points:+.1f} points{caveat} over {best.name} ({100 * best.published_top1:.1f}% "
        f"published, {best.latency_ms:.2f} ms, {best.params / 1e6:.2f} M params, flash fp32 / int8 {flash} MB, "
        f"SRAM int8 {sram} KB), the best published model within {window} at or under the choice's latency"
    )


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
