"""`python -m latency_models.evaluate --target host --space mbv3 [--n 100]`: how faithful the
latency prediction is on this machine.

Samples N random subnets of the space plus the zoo models, emits each as .tflite and measures
it end to end on the interpreter, then scores two predictions against the measurements: the
plain table sum and the learned predictor (fitted on the table, its network terms calibrated
on K further measured subnets that are not scored). Reports the share within +-5% and +-10%,
RMSPE and Kendall tau, writes a predicted-vs-measured plot, and keeps the calibrated predictor
as the `host` profile. Measurements are saved as they are made: a killed run resumes.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from common.cli import ArgumentParser, UserError, run
from common.files import write_atomic
from latency_models.device_profiles import host_predictor_path, host_table_path, measure_command
from latency_models.host import HostBackend
from latency_models.options import add_form_arguments, form_space
from latency_models.predictor import Measurement, fit
from latency_models.signature import PRECISIONS, space_blocks, spec_blocks
from latency_models.table import LatencyTable, TableError
from latency_models.tflite.emit import emit_spec
from search_spaces import SPACES, ArchSpec, get_space
from search_spaces.zoo import ZOO
from search_spaces.zoo import get as zoo_model

PROG = "python -m latency_models.evaluate"
NETWORK_PARAMS = ("net_log_scale", "net_overhead", "net_costs")
# With --proxy the kept host predictor must still serve the deployable networks (searches at
# 224 px): their calibration set, the one a plain run uses, is measured and fitted on too.
DEPLOYED_RESOLUTION = 224


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b: agreement of the orderings of two sequences (1 = same order)."""
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic) if len(a) > 1 else float("nan")


def scores(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    error = predicted / measured - 1
    return {
        "n": int(len(measured)),
        "within_5pct": float(np.mean(np.abs(error) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(error) <= 0.10)),
        "rmspe": float(np.sqrt(np.mean(error**2))),
        "mean_error": float(np.mean(error)),
        "kendall_tau": kendall_tau(predicted, measured),
    }


class MeasurementLog:
    """End-to-end timings by spec hash, saved after each one (so a killed run resumes)."""

    def __init__(self, path: Path, precision: str):
        self.path, self.precision = path, precision
        self.ms: dict[str, float] = json.loads(path.read_text()) if path.exists() else {}

    def key(self, spec: ArchSpec) -> str:
        return f"{spec.content_hash()}-{self.precision}"

    def get(self, spec: ArchSpec) -> float | None:
        return self.ms.get(self.key(spec))

    def add(self, spec: ArchSpec, ms: float) -> None:
        self.ms[self.key(spec)] = ms
        write_atomic(self.path, json.dumps(self.ms, indent=1))


def plot(path: Path, measured: np.ndarray, series: dict[str, np.ndarray], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6))
    top = max(measured.max(), *(s.max() for s in series.values())) * 1.05
    line = np.array([0, top])
    ax.plot(line, line, color="black", linewidth=1, label="exact")
    ax.fill_between(line, line * 0.9, line * 1.1, color="grey", alpha=0.2, label="+-10%")
    for (name, values), marker in zip(series.items(), "ox^"):
        ax.scatter(measured, values, s=14, marker=marker, alpha=0.7, label=name)
    ax.set(xlabel="measured latency (ms)", ylabel="predicted latency (ms)", title=title, xlim=(0, top), ylim=(0, top))
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="host", help="only 'host': networks are measured on this machine")
    parser.add_argument("--space", default="mbv3", choices=sorted(SPACES), help="search space to sample from")
    parser.add_argument("--n", type=int, default=100, help="random subnets to score (default 100)")
    parser.add_argument(
        "--calibrate",
        type=int,
        default=30,
        help="further random subnets measured to calibrate the network terms (default 30; 0: none)",
    )
    parser.add_argument("--resolution", type=int, default=224, help="resolution of the sampled subnets (default 224)")
    parser.add_argument("--precision", default="fp32", choices=PRECISIONS)
    parser.add_argument("--no-zoo", action="store_true", help="score only sampled subnets, not the zoo models")
    parser.add_argument("--table", help="latency table to use (default: this CPU's host table)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--out", default="runs/evaluate", help="folder for measurements, plot and report")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    add_form_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.target != "host":
        raise UserError(
            f"--target: evaluate measures networks on this machine, so only 'host' works, not {args.target!r}"
        )
    for flag in ("n", "resolution"):
        if getattr(args, flag) < 1:
            raise UserError(f"--{flag}: must be positive, got {getattr(args, flag)}")
    if args.calibrate < 0:
        raise UserError(f"--calibrate: must be >= 0, got {args.calibrate}")
    table_path = Path(args.table) if args.table else host_table_path(args.precision)
    # the requested form's flags, so a suggested measure command measures its blocks
    form_flags = (" --proxy" if args.proxy else "") + "".join(
        f" --{flag} {value}"
        for flag, value in (("in-channels", args.in_channels), ("classes", args.classes))
        if value is not None
    )
    if not table_path.exists():
        raise UserError(
            f"no latency table at {table_path}; measure one with: "
            + measure_command(table_path, args.precision, args.space, args.resolution, form_flags)
        )
    try:
        table = LatencyTable.load(table_path)
    except TableError as exc:
        raise UserError(str(exc)) from None

    space = form_space(args)
    forms = [(space, args.resolution, args.proxy)]
    if args.proxy and args.calibrate:
        forms.append((get_space(args.space), DEPLOYED_RESOLUTION, False))
    for form, resolution, proxy in forms:
        missing = table.coverage(space_blocks(form, resolution, args.precision, proxy=proxy)).missing
        if missing:
            what = f"{args.space}{' proxy' if proxy else ''} at {resolution} px {args.precision}"
            command = measure_command(
                table_path, args.precision, args.space, resolution, form_flags if form is space else ""
            )
            raise UserError(
                f"{table_path} lacks {len(missing)} blocks of {what} (a table of another space or resolution, or an "
                f"unfinished one: complete it with {command} --resume)"
            )
    rng = np.random.default_rng(args.seed)
    scored = [space.materialize(space.sample(rng), args.resolution, args.proxy) for _ in range(args.n)]
    scored = [s.with_name(f"{args.space}-{i}") for i, s in enumerate(scored)]
    calibration = []
    for form, resolution, proxy in forms:
        sampler = np.random.default_rng(args.seed + 10_000)  # each form's set is the one a run of it alone takes
        calibration += [form.materialize(form.sample(sampler), resolution, proxy) for _ in range(args.calibrate)]

    zoo = [] if args.no_zoo else [zoo_model(name) for name in ZOO]

    out = Path(args.out)
    log = MeasurementLog(out / "measurements.json", args.precision)
    backend = HostBackend(threads=1, rounds=3, runs=20)
    todo = [s for s in scored + calibration + zoo if log.get(s) is None]
    random.Random(args.seed).shuffle(todo)  # interleave the sets: machine drift hits all alike
    console = Console(stderr=True)
    with (
        tempfile.TemporaryDirectory() as scratch,
        Progress(
            TextColumn("measuring networks"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
        ) as progress,
    ):
        task = progress.add_task("", total=len(todo))
        model_path = Path(scratch) / "network.tflite"
        for spec in todo:
            model_path.write_bytes(emit_spec(spec, precision=args.precision))
            log.add(spec, backend.time_model(model_path).median_ms)
            progress.advance(task)

    base = fit(table, metadata={"device": "host", "precision": args.precision, "source": str(table_path)})
    predictor = base
    if calibration:
        predictor = fit(
            None,
            [Measurement(s, log.get(s), args.precision) for s in calibration],
            init=base,
            trainable=NETWORK_PARAMS,
            steps=1500,
            metadata={
                **base.metadata,
                "calibrated_on": f"{len(calibration)} random {args.space} subnets "
                f"{'(proxy and deployable) ' if len(forms) > 1 else ''}measured end to end (seed {args.seed + 10_000})",
            },
        )
    if args.table is None:
        predictor.save(host_predictor_path(args.precision))

    report: dict[str, Any] = {
        "target": "host",
        "space": args.space,
        "precision": args.precision,
        "table": str(table_path),
        "calibration_networks": len(calibration),
        "sets": {},
    }
    for name, specs in (("subnets", scored), ("zoo", zoo)):
        if not specs:
            continue
        measured = np.array([log.get(s) for s in specs])
        learned = np.array([predictor.spec_ms(s, args.precision) for s in specs])
        covered = [i for i, s in enumerate(specs) if table.coverage(spec_blocks(s, args.precision)).complete]
        entry = {"learned_predictor": scores(learned, measured)}
        if covered:
            summed = np.array([table.spec_latency(specs[i], args.precision) for i in covered])
            entry["table_sum"] = scores(summed, measured[covered])
        report["sets"][name] = entry
        series = {"learned predictor": learned}
        if len(covered) == len(specs):
            series["table sum"] = np.array([table.spec_latency(s, args.precision) for s in specs])
        plot(
            out / f"predicted_vs_measured_{name}.png",
            measured,
            series,
            f"host, {name} ({len(specs)} networks, {args.precision})",
        )
    write_atomic(out / "report.json", json.dumps(report, indent=2))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    view = Table(title=f"latency prediction on this machine ({args.space}, {args.precision})")
    for column in ("set", "method", "n", "within 5%", "within 10%", "RMSPE", "Kendall tau"):
        view.add_column(column)
    for name, entry in report["sets"].items():
        for method, s in entry.items():
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
    print(f"plots and report in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    run(main, PROG)
