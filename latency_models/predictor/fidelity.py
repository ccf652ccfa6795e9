"""How faithful a latency prediction is: networks sampled from a space, measured end to end,
and the predictions scored against the measurements (`python -m latency_models.evaluate` runs it
on this machine).

The scores: the share of networks predicted within +-5% and +-10%, RMSPE, the mean error and
Kendall's tau. The learned predictor is scored with its network terms calibrated on measured
networks it is not scored on: further random subnets, and the other zoo models (each zoo model is
predicted by a predictor calibrated without it, `cross_fitted`). The plain table sum
is scored where the table covers a network's blocks. Measurements are kept in a
`MeasurementLog` as they are made, so a killed run resumes.
"""

from __future__ import annotations

import json
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import read_json, write_atomic, write_figure
from common.stats import kendall_tau
from common.values import is_number
from latency_models.measurement.backends import Backend
from latency_models.predictor.latency_predictor import LatencyPredictor, Measurement, fit
from latency_models.tables.latency_table import LatencyTable
from latency_models.tables.signature import spec_blocks
from latency_models.tflite.emit import emit_spec
from search_spaces.arch_spec import ArchSpec
from search_spaces.space import ChoiceSpace

NETWORK_PARAMS = ("net_log_scale", "net_overhead", "net_costs")
CALIBRATION_STEPS = 1500
# The calibration set is drawn with seed + this, so it never overlaps the scored set's draws.
CALIBRATION_SEED_OFFSET = 10_000


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


class MeasurementLogError(InputError):
    """A measurements.json that is not a log of timings."""


class MeasurementLog:
    """End-to-end timings by spec hash, each network's in a list (one per pass), saved after each
    one (so a killed run resumes). A network's latency is the mean of its timings."""

    def __init__(self, path: Path, precision: str):
        self.path, self.precision = path, precision
        saved = read_json(path, MeasurementLogError) if path.exists() else {}
        damaged = MeasurementLogError(f"{path}: not a log of timings (a JSON object of positive milliseconds)")
        if not isinstance(saved, dict):
            raise damaged
        # Logs written before passes existed hold one number per network.
        self.ms: dict[str, list[float]] = {k: v if isinstance(v, list) else [v] for k, v in saved.items()}
        if not all(is_number(ms) and ms > 0 for timings in self.ms.values() for ms in timings):
            raise damaged

    def key(self, spec: ArchSpec) -> str:
        return f"{spec.content_hash()}-{self.precision}"

    def count(self, spec: ArchSpec) -> int:
        return len(self.ms.get(self.key(spec), []))

    def get(self, spec: ArchSpec) -> float | None:
        timings = self.ms.get(self.key(spec))
        return float(np.mean(timings)) if timings else None

    def add(self, spec: ArchSpec, ms: float) -> None:
        self.ms.setdefault(self.key(spec), []).append(ms)
        write_atomic(self.path, json.dumps(self.ms, indent=1))


# --- the networks ---------------------------------------------------------------------------------


def sample_subnets(
    space: ChoiceSpace, count: int, resolution: int, proxy: bool, seed: int, name: str
) -> list[ArchSpec]:
    """`count` random subnets of `space`, named `<name>-<i>`: the scored set."""
    rng = np.random.default_rng(seed)
    specs = [space.materialize(space.sample(rng), resolution, proxy) for _ in range(count)]
    return [s.with_name(f"{name}-{i}") for i, s in enumerate(specs)]


def calibration_subnets(forms: Sequence[tuple[ChoiceSpace, int, bool]], count: int, seed: int) -> list[ArchSpec]:
    """`count` further random subnets of each (space, resolution, proxy) form, drawn with
    seed + CALIBRATION_SEED_OFFSET: the set the network terms are calibrated on."""
    specs = []
    for form, resolution, proxy in forms:
        # each form's set is the one a run of it alone takes
        sampler = np.random.default_rng(seed + CALIBRATION_SEED_OFFSET)
        specs += [form.materialize(form.sample(sampler), resolution, proxy) for _ in range(count)]
    return specs


def unmeasured(specs: Sequence[ArchSpec], log: MeasurementLog, seed: int, passes: int = 1) -> list[ArchSpec]:
    """The timings `log` still lacks, in order: pass after pass, each pass over the specs with
    fewer timings than it, shuffled. The sets interleave within a pass and a network's timings
    fall in different passes, so the machine's drift hits every network alike."""
    todo = []
    for p in range(passes):
        missing = [s for s in specs if log.count(s) <= p]
        random.Random(seed + p).shuffle(missing)
        todo += missing
    return todo


def measure_networks(
    specs: Sequence[ArchSpec],
    log: MeasurementLog,
    backend: Backend,
    precision: str,
    advance: Callable[[], object] = lambda: None,
) -> None:
    """Emit each spec as .tflite, time it end to end on `backend` and log its median (the log is
    saved after each); `advance` is called after each network."""
    with tempfile.TemporaryDirectory() as scratch:
        model_path = Path(scratch) / "network.tflite"
        for spec in specs:
            model_path.write_bytes(emit_spec(spec, precision=precision))
            log.add(spec, backend.time_model(model_path).median_ms)
            advance()


# --- the predictions ------------------------------------------------------------------------------


def base_predictor(table: LatencyTable, source: str, precision: str) -> LatencyPredictor:
    """The host predictor fitted on `table` alone."""
    return fit(table, metadata={"device": "host", "precision": precision, "source": source})


def calibrated_predictor(
    base: LatencyPredictor, calibration: Sequence[ArchSpec], log: MeasurementLog, precision: str, calibrated_on: str
) -> LatencyPredictor:
    """`base` with its network terms fitted on the measured `calibration` networks (none: `base`
    itself); `calibrated_on` says what they were."""
    if not calibration:
        return base
    return fit(
        None,
        [Measurement(s, log.get(s), precision) for s in calibration],
        init=base,
        trainable=NETWORK_PARAMS,
        steps=CALIBRATION_STEPS,
        metadata={**base.metadata, "calibrated_on": calibrated_on},
    )


def cross_fitted(
    base: LatencyPredictor,
    calibration: Sequence[ArchSpec],
    specs: Sequence[ArchSpec],
    log: MeasurementLog,
    precision: str,
) -> np.ndarray:
    """Each of `specs` predicted by `base` calibrated on `calibration` plus all the other `specs`
    (leave-one-out): a held-out prediction of every one of them, while the others help calibrate."""
    out = np.zeros(len(specs))
    for i, spec in enumerate(specs):
        rest = [s for j, s in enumerate(specs) if j != i]
        predictor = calibrated_predictor(base, [*calibration, *rest], log, precision, "leave-one-out")
        out[i] = predictor.spec_ms(spec, precision)
    return out


def score_set(
    specs: Sequence[ArchSpec], log: MeasurementLog, learned: np.ndarray, table: LatencyTable, precision: str
) -> tuple[dict[str, dict[str, float]], np.ndarray, dict[str, np.ndarray]]:
    """The scores of the learned predictor's predictions `learned` and (on the networks the table
    covers) of the table sum; the measured latencies; the predictions to plot (the table sum only
    if it covers all)."""
    measured = np.array([log.get(s) for s in specs])
    covered = [i for i, s in enumerate(specs) if table.coverage(spec_blocks(s, precision)).complete]
    entry = {"learned_predictor": scores(learned, measured)}
    if covered:
        summed = np.array([table.spec_latency(specs[i], precision) for i in covered])
        entry["table_sum"] = scores(summed, measured[covered])
    series = {"learned predictor": learned}
    if len(covered) == len(specs):
        series["table sum"] = np.array([table.spec_latency(s, precision) for s in specs])
    return entry, measured, series


def plot(path: Path, measured: np.ndarray, series: dict[str, np.ndarray], title: str) -> None:
    import matplotlib  # why: ~0.5 s to import, and only the plot needs it (scores' users never plot)

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
    write_figure(path, fig, dpi=120)
    plt.close(fig)
