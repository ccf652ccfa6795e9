"""`python -m latency_models.evaluate --target host --space mbv3 [--n 100]`: how faithful the
latency prediction is on this machine.

Samples N random subnets of the space plus the zoo models, emits each as .tflite and measures
it end to end on the interpreter, then scores two predictions against the measurements: the
plain table sum and the learned predictor (fitted on the table, its network terms calibrated
on K further measured subnets and on zoo models). Like `predict --target host` for any network,
it first measures the zoo models' blocks the table lacks into it. No network is scored by a
predictor calibrated on it: the subnets are never calibrated on, and each zoo model is predicted
by a predictor calibrated on the others (leave-one-out). Reports the share within +-5%
and +-10%, RMSPE and Kendall tau, writes a predicted-vs-measured plot, and keeps the predictor
calibrated on the K subnets and the whole zoo as the `host` profile. Measurements are saved as
they are made: a killed run resumes. The sampling, measuring, fitting and scoring are
latency_models/predictor/fidelity.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from common.cli import ArgumentParser, UserError, non_negative_int, positive_int, run, seed_int
from common.files import write_atomic
from common.progress import progress_bar
from latency_models.measurement.block_timing import block_progress, hold_table, measure_into
from latency_models.measurement.first_use import distinct_blocks
from latency_models.measurement.host import HostBackend
from latency_models.options import add_form_arguments, add_precision, form_space
from latency_models.predictor.fidelity import (
    CALIBRATION_SEED_OFFSET,
    MeasurementLog,
    base_predictor,
    calibrated_predictor,
    calibration_subnets,
    cross_fitted,
    measure_networks,
    plot,
    sample_subnets,
    score_set,
    unmeasured,
)
from latency_models.predictor.latency_predictor import LatencyPredictor
from latency_models.profiles.registry import host_table_path, measure_command, save_host_predictor
from latency_models.tables.latency_table import LatencyTable, TableError
from latency_models.tables.signature import space_blocks
from search_spaces import SPACES, ArchSpec, get_space
from search_spaces.space import ChoiceSpace
from search_spaces.zoo import ZOO
from search_spaces.zoo import get as zoo_model

PROG = "python -m latency_models.evaluate"
# With --proxy the kept host predictor must still serve the deployable networks (searches at
# 224 px): their calibration set, the one a plain run uses, is measured and fitted on too.
DEPLOYED_RESOLUTION = 224
Form = tuple[ChoiceSpace, int, bool]  # a space, the resolution and whether the proxy form


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="host", help="only 'host': networks are measured on this machine")
    parser.add_argument("--space", default="mbv3", choices=sorted(SPACES), help="search space to sample from")
    parser.add_argument("--n", type=positive_int, default=100, help="random subnets to score (default 100)")
    parser.add_argument(
        "--calibrate",
        type=non_negative_int,
        default=30,
        help="further random subnets measured to calibrate the network terms (default 30; 0: none)",
    )
    parser.add_argument(
        "--resolution", type=positive_int, default=224, help="resolution of the sampled subnets (default 224)"
    )
    parser.add_argument(
        "--passes",
        type=positive_int,
        default=3,
        help="timings of each network, in separate shuffled passes; their mean is scored (default 3: this "
        "machine's speed drifts by several percent over minutes, and timings at three moments average it); "
        "the zoo blocks the table lacks are timed in as many passes",
    )
    add_precision(parser, "the precision networks are emitted, measured and priced at")
    parser.add_argument("--no-zoo", action="store_true", help="score only sampled subnets, not the zoo models")
    parser.add_argument("--table", help="latency table to use (default: this CPU's host table)")
    parser.add_argument("--seed", type=seed_int, default=0, help="sampling seed")
    parser.add_argument(
        "--out",
        default="runs/evaluate",
        help="folder for measurements, plots and report (runs/evaluate): measurements.json (kept, so a rerun "
        "times only what it lacks), predicted_vs_measured_SET.png and report.json; other files there are left alone",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_form_arguments(parser)
    return parser


# --- checks ---------------------------------------------------------------------------------------


def check_arguments(args: argparse.Namespace) -> None:
    if args.target != "host":
        raise UserError(
            f"--target: evaluate measures networks on this machine, so only 'host' works, not {args.target!r}"
        )


def form_flags(args: argparse.Namespace) -> str:
    """The requested form's flags, so a suggested measure command measures its blocks."""
    return (" --proxy" if args.proxy else "") + "".join(
        f" --{flag} {value}"
        for flag, value in (("in-channels", args.in_channels), ("classes", args.classes))
        if value is not None
    )


def load_table(args: argparse.Namespace) -> tuple[Path, LatencyTable]:
    table_path = Path(args.table) if args.table else host_table_path(args.precision)
    if not table_path.exists():
        raise UserError(
            f"no latency table at {table_path}; measure one with: "
            + measure_command(table_path, args.precision, args.space, args.resolution, form_flags(args))
        )
    try:
        return table_path, LatencyTable.load(table_path)
    except TableError as exc:
        raise UserError(str(exc)) from None


def network_forms(args: argparse.Namespace, space: ChoiceSpace) -> list[Form]:
    """The requested form, and with --proxy and a calibration set the deployable one too."""
    forms = [(space, args.resolution, args.proxy)]
    if args.proxy and args.calibrate:
        forms.append((get_space(args.space), DEPLOYED_RESOLUTION, False))
    return forms


def check_coverage(args: argparse.Namespace, table: LatencyTable, table_path: Path, forms: list[Form]) -> None:
    """The table must price every block of every form."""
    for form, resolution, proxy in forms:
        missing = table.coverage(space_blocks(form, resolution, args.precision, proxy=proxy)).missing
        if missing:
            what = f"{args.space}{' proxy' if proxy else ''} at {resolution} px {args.precision}"
            flags = form_flags(args) if form is forms[0][0] else ""  # the deployable form takes none
            command = measure_command(table_path, args.precision, args.space, resolution, flags)
            raise UserError(
                f"{table_path} lacks {len(missing)} blocks of {what} (a table of another space or resolution, or an "
                f"unfinished one: complete it with {command} --resume)"
            )


# --- sampling, measuring, fitting -----------------------------------------------------------------


def sample(args: argparse.Namespace, space: ChoiceSpace, forms: list[Form]) -> dict[str, list[ArchSpec]]:
    """The scored subnets, the calibration subnets and the zoo models."""
    return {
        "subnets": sample_subnets(space, args.n, args.resolution, args.proxy, args.seed, args.space),
        "calibration": calibration_subnets(forms, args.calibrate, args.seed),
        "zoo": [] if args.no_zoo else [zoo_model(name) for name in ZOO],
    }


def measure_zoo_blocks(
    args: argparse.Namespace, table: LatencyTable, table_path: Path, zoo: Sequence[ArchSpec]
) -> None:
    """Time the zoo models' blocks the table lacks into it, as `predict --target host` does for any
    network on first use (latency_models.measurement.first_use): the host predictor prices a network after
    its blocks are in the table, so that is the predictor to score. Timed in --passes passes, as
    the networks are; saved after each timing."""
    with hold_table(table_path):
        missing = table.coverage(distinct_blocks(zoo, args.precision)).missing
        if not missing:
            return
        console = Console(stderr=True)
        console.print(f"measuring the {len(missing)} blocks of the zoo models that {table_path} lacks", highlight=False)
        with block_progress(console, len(missing) * args.passes) as on_block:
            measure_into(HostBackend(), missing, table, table_path, on_block, passes=args.passes)


def measure(args: argparse.Namespace, log: MeasurementLog, specs: Sequence[ArchSpec]) -> None:
    """Time every network `log` lacks on this machine, with a progress bar on stderr."""
    backend = HostBackend(threads=1, rounds=3, runs=20)
    todo = unmeasured(specs, log, args.seed, args.passes)
    with progress_bar(Console(stderr=True)) as progress:
        task = progress.add_task("measuring networks", total=len(todo))
        measure_networks(todo, log, backend, args.precision, advance=lambda: progress.advance(task))


def fit_predictor(
    args: argparse.Namespace, base: LatencyPredictor, log: MeasurementLog, nets: dict[str, list[ArchSpec]], forms
) -> LatencyPredictor:
    """The host predictor calibrated on the calibration subnets and the whole zoo, kept as the
    `host` profile unless --table named another table."""
    calibrated_on = (
        f"{len(nets['calibration'])} random {args.space} subnets "
        f"{'(proxy and deployable) ' if len(forms) > 1 else ''}measured end to end "
        f"(seed {args.seed + CALIBRATION_SEED_OFFSET})"
        + (f" and the {len(nets['zoo'])} zoo models" if nets["zoo"] else "")
    )
    predictor = calibrated_predictor(base, nets["calibration"] + nets["zoo"], log, args.precision, calibrated_on)
    if args.table is None:
        save_host_predictor(predictor, args.precision)
    return predictor


# --- reporting ------------------------------------------------------------------------------------


def score(
    args: argparse.Namespace,
    table_path: Path,
    table: LatencyTable,
    base: LatencyPredictor,
    predictor: LatencyPredictor,
    log: MeasurementLog,
    nets: dict[str, list[ArchSpec]],
) -> dict[str, Any]:
    """The report (also written to --out as report.json), with a plot of each set: the subnets
    predicted by `predictor`, the zoo models cross-fitted."""
    out = Path(args.out)
    report: dict[str, Any] = {
        "target": "host",
        "space": args.space,
        "precision": args.precision,
        "table": str(table_path),
        "calibration_networks": len(nets["calibration"]),
        "zoo_scoring": "leave-one-out: each zoo model predicted with the network terms calibrated on the "
        f"{len(nets['calibration'])} calibration subnets and the other zoo models",
        "sets": {},
    }
    for name in ("subnets", "zoo"):
        specs = nets[name]
        if not specs:
            continue
        if name == "zoo":
            learned = cross_fitted(base, nets["calibration"], specs, log, args.precision)
        else:
            learned = np.array([predictor.spec_ms(s, args.precision) for s in specs])
        report["sets"][name], measured, series = score_set(specs, log, learned, table, args.precision)
        report["sets"][name]["networks"] = {
            s.name: {"measured_ms": round(float(m), 4), "predicted_ms": round(float(p), 4)}
            for s, m, p in zip(specs, measured, learned)
        }
        title = f"host, {name} ({len(specs)} networks, {args.precision})"
        plot(out / f"predicted_vs_measured_{name}.png", measured, series, title)
    write_atomic(out / "report.json", json.dumps(report, indent=2))
    return report


def print_report(args: argparse.Namespace, report: dict[str, Any]) -> None:
    view = Table(title=f"latency prediction on this machine ({args.space}, {args.precision})")
    for column in ("set", "method", "n", "within 5%", "within 10%", "RMSPE", "Kendall tau"):
        view.add_column(column)
    for name, entry in report["sets"].items():
        for method, s in entry.items():
            if method == "networks":
                continue
            view.add_row(
                name,
                method.replace("_", " "),
                str(s["n"]),
                f"{s['within_5pct']:.0%}",
                f"{s['within_10pct']:.0%}",
                f"{s['rmspe']:.3f}",
                f"{s['kendall_tau']:.3f}",
            )
    Console(width=None if Console().is_terminal else 120).print(view)
    print(f"plots and report in {Path(args.out)}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_arguments(args)
    table_path, table = load_table(args)
    space = form_space(args)
    forms = network_forms(args, space)
    check_coverage(args, table, table_path, forms)
    Path(args.out).mkdir(parents=True, exist_ok=True)  # an --out that cannot be a folder fails here, before any work
    nets = sample(args, space, forms)
    log = MeasurementLog(Path(args.out) / "measurements.json", args.precision)
    measure_zoo_blocks(args, table, table_path, nets["zoo"])
    measure(args, log, nets["subnets"] + nets["calibration"] + nets["zoo"])
    base = base_predictor(table, str(table_path), args.precision)
    predictor = fit_predictor(args, base, log, nets, forms)
    report = score(args, table_path, table, base, predictor, log, nets)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(args, report)
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
