"""`python -m latency_models.calibrate --base note10 --measurements phone.csv --name my_phone`:
a device profile for a phone of your own, from a handful of whole-network timings.

The measurement file is a CSV with columns `arch` (an ArchSpec JSON file, relative to the CSV's
folder or absolute, or a zoo model name such as `mobilenet_v2_1.0`), `ms` (measured latency)
and optionally `precision` (fp32 or int8; rows of another precision than --precision are left
out). The fit, the base profile's transfer to the measurements, is
`latency_models.predictor.calibration.calibrate` (its docstring says what moves). The profile is saved as
$NAS_HOME/profiles/<name>-<precision>.json (`--out` to put it elsewhere), where
`latency_models.profiles.registry` finds it under the name <name>.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from common.cli import ArgumentParser, UserError, non_negative_float, positive_int, run
from common.locks import hold
from common.values import all_finite
from latency_models.options import add_precision
from latency_models.predictor.calibration import (
    MIN_MEASUREMENTS,
    PRIOR_WEIGHT,
    STEPS,
    TRAINABLE,
    calibrate,
    describe,
    errors,
    load_base,
    read_measurements,
    summarize,
)
from latency_models.predictor.latency_predictor import LatencyPredictor, Measurement, PredictorError
from latency_models.profiles.registry import PROFILES, UnknownTarget, user_profiles_dir
from latency_models.tables.signature import PRECISIONS

PROG = "python -m latency_models.calibrate"
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.]*(-[A-Za-z0-9_.]+)*$")


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog=PROG,
        description="Fit a device profile for your own phone from a few whole-network latencies, starting from a "
        "bundled profile. Prints the fit's in-sample error and writes the profile where `--target NAME` finds it.",
    )
    parser.add_argument(
        "--base",
        required=True,
        help="profile to start from: a device name (python -m latency_models.devices lists them; "
        "pick the most similar device) or a predictor JSON file",
    )
    parser.add_argument(
        "--measurements",
        required=True,
        metavar="FILE.csv",
        help="CSV with columns arch (spec JSON path, relative to the CSV, or zoo model name), "
        "ms, and optionally precision",
    )
    parser.add_argument("--name", required=True, help="name of the new device profile (letters, digits, _ . -)")
    add_precision(parser, "precision the measurements were taken at; rows of other precisions are skipped")
    parser.add_argument(
        "--out",
        help="write the profile here instead of $NAS_HOME/profiles/<name>-<precision>.json (held by OUT.lock while "
        "written: a second writer is refused)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="allow a name that a bundled profile already uses (your profile then takes its place)",
    )
    parser.add_argument("--steps", type=positive_int, default=STEPS, help=f"optimiser steps (default: {STEPS})")
    parser.add_argument(
        "--prior-weight",
        type=non_negative_float,
        default=PRIOR_WEIGHT,
        help=f"how strongly the fit stays near the base profile (default: {PRIOR_WEIGHT:g})",
    )
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    if not NAME.match(args.name) or args.name.endswith(tuple(f"-{p}" for p in PRECISIONS)):
        raise UserError(f"--name: {args.name!r} is not a profile name (letters, digits, _ . and inner -)")
    if args.name == "host":
        raise UserError("--name: 'host' is this machine's own profile; choose another name")
    if not args.force and any(PROFILES.glob(f"{args.name}-*.json")):
        raise UserError(f"--name: {args.name!r} is a bundled profile; choose another name or pass --force")


def read_inputs(args: argparse.Namespace) -> tuple[list[Measurement], int, LatencyPredictor, str]:
    """The measurements at --precision, the file's row count, the base and the base's precision."""
    path = Path(args.measurements)
    measurements, total = read_measurements(path, args.precision)
    if len(measurements) < MIN_MEASUREMENTS:
        raise UserError(
            f"{path}: {len(measurements)} {args.precision} measurement(s) of {total} rows; "
            f"a calibration needs at least {MIN_MEASUREMENTS}"
        )
    try:
        base, base_precision = load_base(args.base, args.precision)
    except (UnknownTarget, PredictorError) as exc:
        raise UserError(f"--base: {exc}") from None
    return measurements, total, base, base_precision


def profile_metadata(
    args: argparse.Namespace, measurements: list[Measurement], total: int, base: LatencyPredictor, base_precision: str
) -> dict[str, Any]:
    """What the new profile records: its name, the base it came from, the figures, the fit's settings."""
    path = Path(args.measurements)
    return {
        "device": args.name,
        "precision": args.precision,
        "description": f"calibrated from {args.base} with {len(measurements)} whole-network measurements",
        "source": f"{path.resolve()} ({len(measurements)} measurements), base profile {args.base}",
        "base": {
            "profile": args.base,
            "precision": base_precision,
            **{k: base.metadata[k] for k in ("device", "source", "fitted") if k in base.metadata},
        },
        "measurements": {
            "file": str(path.resolve()),
            "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "count": len(measurements),
            "rows": total,
            "figures": [{"arch": m.label, "ms": m.ms} for m in measurements],
        },
        "calibration": {
            "trainable": list(TRAINABLE),
            "prior_weight": args.prior_weight,
            "steps": args.steps,
            "date": datetime.date.today().isoformat(),
        },
    }


def fit_profile(
    args: argparse.Namespace, measurements: list[Measurement], base: LatencyPredictor, metadata: dict[str, Any]
) -> tuple[LatencyPredictor, np.ndarray]:
    """The calibrated predictor, its report (base and in-sample errors) in its metadata, and its
    relative error on each measurement."""
    before = summarize(errors(base, measurements))
    predictor = calibrate(base, measurements, prior_weight=args.prior_weight, steps=args.steps, metadata=metadata)
    after_errors = errors(predictor, measurements)
    if not (all(all_finite(value) for value in predictor.params.values()) and all_finite(after_errors)):
        raise UserError(f"{args.measurements}: the calibration diverged on these timings (nothing written)")
    predictor.metadata["report"] = {
        "base_error": before,
        "in_sample": summarize(after_errors),
        "errors": [round(float(e), 4) for e in after_errors],
    }
    return predictor, after_errors


def save(predictor: LatencyPredictor, out: Path) -> bool:
    """Write the profile; whether it replaced one."""
    try:
        with hold(out, "latency profile"):  # one writer: a second calibration into it is refused
            replaced = out.exists()
            predictor.save(out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    return replaced


def print_report(
    args: argparse.Namespace,
    measurements: list[Measurement],
    predictor: LatencyPredictor,
    after_errors: np.ndarray,
    base_precision: str,
) -> None:
    width = max(len(m.label) for m in measurements)
    print(f"{'arch':<{width}}  {'measured':>9}  {'predicted':>9}  {'error':>7}")
    for m, e in zip(measurements, after_errors):
        print(f"{m.label:<{width}}  {m.ms:9.3f}  {m.ms * (1 + e):9.3f}  {e:+7.1%}")
    report = predictor.metadata["report"]
    print(f"base {args.base} ({base_precision}) as it is: {describe(report['base_error'])}")
    print(f"calibrated, in-sample: {describe(report['in_sample'])}")
    if len(measurements) < 5:
        print(f"(only {len(measurements)} measurements: in-sample error says little about other networks)")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_arguments(args)
    measurements, total, base, base_precision = read_inputs(args)
    out = Path(args.out) if args.out else user_profiles_dir() / f"{args.name}-{args.precision}.json"
    metadata = profile_metadata(args, measurements, total, base, base_precision)
    predictor, after_errors = fit_profile(args, measurements, base, metadata)
    replaced = save(predictor, out)
    print_report(args, measurements, predictor, after_errors, base_precision)
    print(f"wrote {out}{' (replaced the one there)' if replaced else ''}")
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
