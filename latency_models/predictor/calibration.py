"""Few-shot calibration: a device profile for a new phone from a handful of whole-network timings
(`python -m latency_models.calibrate` is its command line).

The new profile starts from the base profile's predictor with its network scale set to the
least-squares factor between the two (`coarse`), then fits, with a prior that keeps it near
that start,

- the price of each kind of work (`log_costs`: MACs by kind, bytes moved, ops, ...),
- the network scale and the per-network overhead,

while the base's per-block shape corrections (the MLP) are kept. That is the whole transfer:
`calibrate()` below, which the bundled `pixel4` profile is fitted with too
(latency_models/profiles/pixel4.py).

The measurement file `read_measurements` takes is a CSV with columns `arch` (an ArchSpec JSON
file, relative to the CSV's folder or absolute, or a zoo model name such as `mobilenet_v2_1.0`),
`ms` (measured latency) and optionally `precision` (fp32 or int8; rows of another precision than
the one asked for are left out).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import InputError
from common.files import read_text
from common.values import is_number
from latency_models.predictor.latency_predictor import LatencyPredictor, Measurement, fit
from latency_models.profiles.registry import UnknownTarget, bundled, load_predictor
from latency_models.tables.signature import PRECISIONS
from search_spaces import zoo
from search_spaces.arch_spec import ArchSpec, SpecError

# What a few whole-network timings can pin down (see the module docstring), how strongly the
# prior holds each parameter array at the base's value (a sum of squares of raw parameters: for
# log_costs about the squared log of each price's ratio to the base's), and the Adam steps.
# Chosen on the Pixel 4 figures (leave-one-family-out) and the HELP phones (see
# benchmarks/calibration_curve.py): a prior of 1e-2 or 1e-1 predicted worse on both, and so did
# training the MLP too (it overfits two dozen networks); 500 steps have converged.
TRAINABLE = ("log_costs", "net_log_scale", "net_overhead")
PRIOR_WEIGHT = 1e-3
STEPS = 1000
MIN_MEASUREMENTS = 2
MAX_MS = 1e6  # a network timed at over 1000 s is a unit mistake (us, ns), and 1e300 made a NaN profile
# fit() clamps the spread of a descriptor entry that never varied in its training data to 1e-3.
_UNSEEN_STD = 1.5e-3


class MeasurementsError(InputError):
    """A measurement file that cannot be read or has a bad row; the message names the line."""


def transferable(base: LatencyPredictor) -> LatencyPredictor:
    """The base with descriptor entries it never saw vary (an op kind, an activation, the int8
    flag its table did not contain) rescaled to unit spread. Fitted with a 1e-3 spread, a block
    that has such a feature would feed the MLP an input of +-1000 and saturate it; the MLP never
    learned anything about that entry, so the input should be small. (The bundled bases' MLP
    weights on such entries have decayed to zero, so this matters once a calibration trains the
    MLP, e.g. `trainable=(..., "w1", ...)`.)"""
    std = np.array(base.desc_std, dtype=np.float64)
    std[std <= _UNSEEN_STD] = 1.0
    params = {name: np.array(value, dtype=np.float64) for name, value in base.params.items()}
    return LatencyPredictor(params, np.array(base.desc_mean, dtype=np.float64), std, dict(base.metadata))


def calibrate(
    base: LatencyPredictor,
    measurements: Sequence[Measurement],
    trainable: Sequence[str] = TRAINABLE,
    prior_weight: float = PRIOR_WEIGHT,
    steps: int = STEPS,
    metadata: dict[str, Any] | None = None,
) -> LatencyPredictor:
    """A predictor of a new device: `base` transferred to whole-network `measurements`."""
    if not measurements:
        raise ValueError("calibrate: no measurements")
    start = coarse(transferable(base), measurements)
    return fit(
        None,
        measurements,
        steps=steps,
        init=start,
        trainable=trainable,
        prior_weight=prior_weight,
        metadata=metadata,
    )


def coarse(base: LatencyPredictor, measurements: Sequence[Measurement]) -> LatencyPredictor:
    """`base` with its network scale set to the factor that fits `measurements` best (least
    squares on relative error, in closed form). The calibration starts here, and its prior holds
    it near here rather than near the base: a new phone's overall speed is what certainly differs.

    The per-network overhead stays the base's (about one invoke, for a base fitted on a per-block
    table), and the prior keeps it near that: fitted freely next to the scale, it took up what
    the costs should explain and predicted worse
    (docs/results.md#why-the-calibration-keeps-the-bases-overhead)."""
    own = base.network_overhead_ms
    work = np.array([base.spec_ms(m.spec, m.precision) - own for m in measurements])
    measured = np.array([m.ms for m in measurements])
    scale = float(np.sum(work * (measured - own) / measured**2) / np.sum((work / measured) ** 2))
    if not scale > 0:  # measurements below the base's own overhead
        scale = float(np.sum(work / measured) / np.sum((work / measured) ** 2))
    params = {name: np.array(value, dtype=np.float64) for name, value in base.params.items()}
    params["net_log_scale"] = np.array(float(params["net_log_scale"]) + math.log(scale))
    return LatencyPredictor(params, base.desc_mean, base.desc_std, dict(base.metadata))


def errors(predictor: LatencyPredictor, measurements: Sequence[Measurement]) -> np.ndarray:
    """Relative error (predicted / measured - 1) of each measurement."""
    return np.array([predictor.spec_ms(m.spec, m.precision) / m.ms - 1 for m in measurements], dtype=np.float64)


def summarize(relative_errors: Sequence[float]) -> dict[str, float | int]:
    e = np.asarray(relative_errors, dtype=np.float64)
    return {
        "count": int(e.size),
        "within_10pct": float(np.mean(np.abs(e) <= 0.10)) if e.size else math.nan,
        "rmspe": float(np.sqrt(np.mean(e**2))) if e.size else math.nan,
        "max_abs_error": float(np.max(np.abs(e))) if e.size else math.nan,
    }


def describe(summary: dict[str, Any]) -> str:
    within = round(summary["within_10pct"] * summary["count"])
    return (
        f"{within}/{summary['count']} within +-10%, RMSPE {summary['rmspe']:.1%}, "
        f"max |error| {summary['max_abs_error']:.1%}"
    )


# --- the inputs of a calibration ----------------------------------------------------------------


def load_base(name: str, precision: str) -> tuple[LatencyPredictor, str]:
    """The base predictor (a profile name or a predictor file) and which precision it is. A
    profile without that precision lends its fp32 predictor (the int8 flag is then a feature the
    base never saw; the calibration prices int8 work from the measurements). Raises
    UnknownTarget or PredictorError."""
    if name.endswith(".json") or Path(name).is_file():
        predictor = LatencyPredictor.load(name)
        return predictor, str(predictor.metadata.get("precision", "fp32"))
    try:
        return load_predictor(name, precision), precision
    except UnknownTarget:
        if precision != "fp32" and (name, "fp32") in bundled():
            return load_predictor(name, "fp32"), "fp32"
        raise


def read_measurements(path: Path, precision: str) -> tuple[list[Measurement], int]:
    """The rows of `path` at `precision` as Measurements, and how many rows the file has."""
    text = read_text(path, MeasurementsError, "CSV")
    try:
        return _rows(path, text, precision)
    except csv.Error as exc:
        raise MeasurementsError(f"{path}: not a readable CSV file ({exc})") from None


def _rows(path: Path, text: str, precision: str) -> tuple[list[Measurement], int]:
    reader = csv.DictReader(text.splitlines())
    columns = [c.strip() for c in reader.fieldnames or []]
    for needed in ("arch", "ms"):
        if needed not in columns:
            raise MeasurementsError(
                f"{path}: no `{needed}` column (need arch and ms, optional precision; got "
                f"{', '.join(columns) or 'nothing'})"
            )
    specs: dict[str, Any] = {}
    out, total = [], 0
    for line, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items()}
        where = f"{path}:{line}"
        arch, ms_text, row_precision = row.get("arch", ""), row.get("ms", ""), row.get("precision", "") or precision
        if not arch and not ms_text:
            continue  # a blank line
        total += 1
        if row_precision not in PRECISIONS:
            raise MeasurementsError(f"{where}: precision {row_precision!r} is not one of {', '.join(PRECISIONS)}")
        try:
            ms = float(ms_text)
        except ValueError:
            raise MeasurementsError(f"{where}: ms {ms_text!r} is not a number") from None
        if not is_number(ms) or ms <= 0 or ms > MAX_MS:
            raise MeasurementsError(f"{where}: ms must be a positive latency of at most {MAX_MS:g} ms, got {ms_text}")
        if not arch:
            raise MeasurementsError(f"{where}: empty arch (a spec JSON file or a zoo model name)")
        if arch not in specs:
            specs[arch] = _arch_spec(arch, path.parent, where)
        if row_precision == precision:
            out.append(Measurement(specs[arch], ms, precision, arch))
    return out, total


def _arch_spec(arch: str, folder: Path, where: str) -> ArchSpec:
    if arch in zoo.ZOO:
        return zoo.get(arch)
    path = Path(arch) if Path(arch).is_absolute() else folder / arch
    if path.suffix == ".json" or path.exists():
        try:
            return ArchSpec.load(str(path))
        except SpecError as exc:
            raise MeasurementsError(f"{where}: {exc}") from None
    raise MeasurementsError(
        f"{where}: arch {arch!r} is neither a spec JSON file nor a zoo model "
        "(`python -m search_spaces.zoo list` names them)"
    )
