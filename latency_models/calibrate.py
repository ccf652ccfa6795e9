"""`python -m latency_models.calibrate --base note10 --measurements phone.csv --name my_phone`:
a device profile for a phone of your own, from a handful of whole-network timings.

The measurement file is a CSV with columns `arch` (an ArchSpec JSON file, relative to the CSV's
folder or absolute, or a zoo model name such as `mobilenet_v2_1.0`), `ms` (measured latency)
and optionally `precision` (fp32 or int8; rows of another precision than --precision are left
out). The new profile starts from the base profile's predictor with its network scale set to
the least-squares factor between the two (`coarse`), then fits, with a prior that keeps it near
that start,

- the price of each kind of work (`log_costs`: MACs by kind, bytes moved, ops, ...),
- the network scale and the per-network overhead,

while the base's per-block shape corrections (the MLP) are kept. That is the whole transfer:
`calibrate()` below, which the bundled `pixel4` profile is fitted with too
(latency_models/pixel4_profile.py). The profile is saved as $NAS_HOME/profiles/<name>-<precision>.json
(`--out` to put it elsewhere), where `latency_models.devices` finds it under the name <name>.
"""

from __future__ import annotations

import datetime
import hashlib
from pathlib import Path
from typing import Any

from common.cli import ArgumentParser, UserError, non_negative_float, positive_int, run
from latency_models.calibration import (
    MIN_MEASUREMENTS,
    NAME,
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
from latency_models.device_profiles import PROFILES, user_profiles_dir
from latency_models.options import add_precision
from latency_models.signature import PRECISIONS

PROG = "python -m latency_models.calibrate"


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
    parser.add_argument("--out", help="write the profile here instead of $NAS_HOME/profiles/<name>-<precision>.json")
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


def _check_name(args) -> None:
    if not NAME.match(args.name) or args.name.endswith(tuple(f"-{p}" for p in PRECISIONS)):
        raise UserError(f"--name: {args.name!r} is not a profile name (letters, digits, _ . and inner -)")
    if args.name == "host":
        raise UserError("--name: 'host' is this machine's own profile; choose another name")
    if not args.force and any(PROFILES.glob(f"{args.name}-*.json")):
        raise UserError(f"--name: {args.name!r} is a bundled profile; choose another name or pass --force")


def _metadata(args, path: Path, measurements, total: int, base, base_precision: str) -> dict[str, Any]:
    """What the profile records of how it was made."""
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


def _report(args, measurements, after_errors, before, after, base_precision: str, out: Path, replaced: bool) -> None:
    width = max(len(m.label) for m in measurements)
    print(f"{'arch':<{width}}  {'measured':>9}  {'predicted':>9}  {'error':>7}")
    for m, e in zip(measurements, after_errors):
        print(f"{m.label:<{width}}  {m.ms:9.3f}  {m.ms * (1 + e):9.3f}  {e:+7.1%}")
    print(f"base {args.base} ({base_precision}) as it is: {describe(before)}")
    print(f"calibrated, in-sample: {describe(after)}")
    if len(measurements) < 5:
        print(f"(only {len(measurements)} measurements: in-sample error says little about other networks)")
    print(f"wrote {out}{' (replaced the one there)' if replaced else ''}")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _check_name(args)
    path = Path(args.measurements)
    measurements, total = read_measurements(path, args.precision)
    if len(measurements) < MIN_MEASUREMENTS:
        raise UserError(
            f"{path}: {len(measurements)} {args.precision} measurement(s) of {total} rows; "
            f"a calibration needs at least {MIN_MEASUREMENTS}"
        )
    base, base_precision = load_base(args.base, args.precision)
    out = Path(args.out) if args.out else user_profiles_dir() / f"{args.name}-{args.precision}.json"
    before = summarize(errors(base, measurements))
    metadata = _metadata(args, path, measurements, total, base, base_precision)
    predictor = calibrate(base, measurements, prior_weight=args.prior_weight, steps=args.steps, metadata=metadata)
    after_errors = errors(predictor, measurements)
    after = summarize(after_errors)
    predictor.metadata["report"] = {
        "base_error": before,
        "in_sample": after,
        "errors": [round(float(e), 4) for e in after_errors],
    }
    replaced = out.exists()
    try:
        predictor.save(out)
    except OSError as exc:
        raise UserError(f"cannot write {out}: {exc.strerror}") from None
    _report(args, measurements, after_errors, before, after, base_precision, out, replaced)
    return 0


def cli() -> None:
    run(main, PROG)


if __name__ == "__main__":
    cli()
