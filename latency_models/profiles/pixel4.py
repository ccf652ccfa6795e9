"""The bundled Pixel 4 profiles: `pixel4` (TFLite, one thread on the 2.84 GHz Cortex-A76 prime
core, mobile-ml-benchmark's `1large` configuration) and `pixel4-<config>` for that benchmark's
other CPU configurations (CONFIGS: mid and little cores, 1-4 threads), fp32 and int8, and for
its GPU (`pixel4-gpu`, fp32).

No per-block table of the Pixel 4 CPU is public, only whole-network latencies (qed-usc/
mobile-ml-benchmark, in data/latency-data/published_models.csv) of pytorchcv networks, 79 of
which the IR expresses (search_spaces/zoo/pytorchcv.py) in 16 families. `build` transfers the
Note10 predictor to all 79 figures of a precision and configuration with
`latency_models.predictor.calibration.calibrate`, the code path a user's own phone goes through,
fitting also the output layer of the per-block correction network (PROFILE_TRAINABLE) with a
weak prior; the GPU starts from a linear form with a per-invoke floor (`for_gpu`). Each profile
keeps its figures, in-sample and leave-one-family-out errors in its metadata, and
`python -m latency_models.build_profiles --device pixel4` prints them. Why this form, and what
each choice measured: docs/results.md#pixel-4-profile.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.predictor.calibration import STEPS, TRAINABLE, calibrate, describe, errors, summarize
from latency_models.predictor.latency_predictor import LatencyPredictor, Measurement
from search_spaces.arch_spec import ArchSpec
from search_spaces.graph import count_macs
from search_spaces.zoo.pytorchcv import MODELS as PYTORCHCV
from search_spaces.zoo.pytorchcv import PytorchcvModel

CSV_NAME = "published_models.csv"
# The benchmark's configurations (measurement_note "config <name>: ..."), each a profile: `pixel4`
# is the 1-thread prime-core one, the others are `pixel4-<config>`; all CPU but `gpu`.
GPU = "gpu"
CONFIGS = {
    "1large": "1 thread on the Cortex-A76 prime core (2.84 GHz)",
    "1med": "1 thread on a mid Cortex-A76 core",
    "2med": "2 threads on the mid Cortex-A76 cores",
    "3med": "3 threads on the mid Cortex-A76 cores",
    "1large1med": "2 threads: the prime core and a mid Cortex-A76 core",
    "1small": "1 thread on a Cortex-A55 little core",
    "2small": "2 threads on Cortex-A55 little cores",
    "3small": "3 threads on Cortex-A55 little cores",
    "4small": "4 threads on Cortex-A55 little cores",
    GPU: "TFLite GPU delegate on the Adreno 640 (a float model; the delegate computes in fp16)",
}
# What the transfer fits (on top of calibration.TRAINABLE: the prices of work, the network scale
# and overhead): the correction network's output layer too, with a weaker prior than a few-shot
# calibration's, chosen by leave-one-family-out error on the 79 `1large` figures
# (docs/results.md#pixel-4-how-the-fp32-form-was-chosen). Two dozen networks (a user's few-shot
# calibration) are too few for this: calibration.TRAINABLE stays the default there.
PROFILE_TRAINABLE = (*TRAINABLE, "w2", "b2")
PROFILE_PRIOR = 1e-4


def device_name(config: str) -> str:
    return "pixel4" if config == "1large" else f"pixel4-{config}"


def precisions(config: str) -> tuple[str, ...]:
    """The precisions the benchmark measured in a configuration (its GPU runs float models only)."""
    return ("fp32",) if config == GPU else ("fp32", "int8")


SOURCE_COLUMNS = (
    "model",
    "input_size",
    "device",
    "soc",
    "compute_unit",
    "runtime",
    "threads",
    "precision",
    "latency_ms",
    "latency_std_ms",
    "measurement_note",
    "source_repo",
    "source_path",
    "source_commit",
)
# Every measured network the IR expresses (search_spaces.zoo.pytorchcv), and their families.
MODELS: dict[str, PytorchcvModel] = dict(PYTORCHCV)
FAMILIES = tuple(sorted({m.family for m in MODELS.values()}))


# --- the published figures ---------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    name: str  # the CSV's model name
    family: str
    spec: ArchSpec
    ms: float
    precision: str
    row: dict[str, str]  # the CSV row's source columns

    @property
    def csv_macs(self) -> float:
        return float(self.row["measurement_note"].rsplit("FLOPS=", 1)[1]) / 2

    @property
    def our_macs(self) -> int:
        return count_macs(self.spec)


def figures(data: Path, precision: str = "fp32", config: str = "1large") -> list[Figure]:
    """The Pixel 4 figures of the models in MODELS in one configuration, in MODELS order. The GPU
    rows' precision column describes the run (a float model, fp16 on the GPU): they are fp32 here,
    the precision of the model a user hands over."""
    prefix = f"config {config}:"
    unit = "GPU" if config == GPU else "CPU"
    path = Path(data) / CSV_NAME
    with open(path, newline="") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if r["device"] == "Pixel 4"
            and r["compute_unit"] == unit
            and (r["precision"] == precision or (unit == "GPU" and precision == "fp32"))
            and r["measurement_note"].startswith(prefix)
        ]
    by_name = {r["model"]: r for r in rows}
    missing = [name for name in MODELS if name not in by_name]
    if missing:
        raise FileNotFoundError(f"{path}: no Pixel 4 config {config} {precision} row for {', '.join(missing)}")
    return [
        Figure(
            name,
            m.family,
            m.build().with_name(name),
            float(by_name[name]["latency_ms"]),
            precision,
            {c: by_name[name][c] for c in SOURCE_COLUMNS},
        )
        for name, m in MODELS.items()
    ]


# --- the fit ------------------------------------------------------------------------------------


def _measurements(figs: list[Figure]) -> list[Measurement]:
    return [Measurement(f.spec, f.ms, f.precision, f.name) for f in figs]


def _transfer(
    base: LatencyPredictor, measurements: list[Measurement], gpu: bool = False, **kw: Any
) -> LatencyPredictor:
    if gpu:
        return calibrate(for_gpu(base, measurements), measurements, prior_weight=PROFILE_PRIOR, **kw)
    return calibrate(base, measurements, trainable=PROFILE_TRAINABLE, prior_weight=PROFILE_PRIOR, **kw)


def for_gpu(base: LatencyPredictor, measurements: list[Measurement]) -> LatencyPredictor:
    """The start of a GPU profile: `base` (a CPU's) without its per-block corrections, which are a
    CPU's, and with its per-network overhead set to the intercept of the least-squares line (on
    relative error) between the base's predictions and `measurements`. A GPU delegate has a floor
    a CPU has not: every invoke pays about a millisecond whatever the network (uploading the
    input, waiting for the GPU). The calibration cannot grow it from a CPU base's overhead of a
    few microseconds (its gradient is that small), so the transfer starts from the line's."""
    params = {name: np.array(value, dtype=np.float64) for name, value in base.params.items()}
    params["w2"], params["b2"] = np.zeros_like(params["w2"]), np.zeros_like(params["b2"])
    linear = LatencyPredictor(params, base.desc_mean, base.desc_std, dict(base.metadata))
    own = linear.network_overhead_ms
    work = np.array([linear.spec_ms(m.spec, m.precision) - own for m in measurements])
    measured = np.array([m.ms for m in measurements])
    design = np.stack([work, np.ones_like(work)], axis=1) / measured[:, None]
    (_, floor), *_ = np.linalg.lstsq(design, np.ones_like(measured), rcond=None)
    params["net_overhead"] = np.array(math.log(math.expm1(max(float(floor), own))))
    return LatencyPredictor(params, base.desc_mean, base.desc_std, dict(base.metadata))


def leave_one_family_out(base: LatencyPredictor, figs: list[Figure], gpu: bool = False) -> np.ndarray:
    """Relative error on each figure of a profile calibrated without its family."""
    out = np.zeros(len(figs))
    for family in FAMILIES:
        held = [i for i, f in enumerate(figs) if f.family == family]
        rest = [f for f in figs if f.family != family]
        predictor = _transfer(base, _measurements(rest), gpu)
        out[held] = errors(predictor, _measurements([figs[i] for i in held]))
    return out


def _report(figs: list[Figure], in_sample: np.ndarray, lofo: np.ndarray) -> dict[str, Any]:
    return {
        "in_sample": summarize(in_sample),
        "leave_one_family_out": {
            **summarize(lofo),
            "families": {fam: summarize([e for e, f in zip(lofo, figs) if f.family == fam]) for fam in FAMILIES},
        },
    }


def build(
    data: Path, note10: LatencyPredictor, config: str = "1large", echo: Callable[[str], None] | None = print
) -> dict[str, LatencyPredictor]:
    """{"fp32": ..., "int8": ...}: the Note10 predictor transferred to the Pixel 4 figures of one
    configuration, each precision it has, with the figures, in-sample and leave-one-family-out
    errors in its metadata."""
    out = {}
    device, gpu = device_name(config), config == GPU
    for precision in precisions(config):
        figs = figures(data, precision, config)
        metadata = {
            "device": device,
            "precision": precision,
            "description": f"Google Pixel 4 {'GPU' if gpu else 'CPU'}, TFLite, {CONFIGS[config]}",
            "soc": figs[0].row["soc"],
            "runtime": "tflite",
            "runtime_version": figs[0].row["runtime"],
            **({} if gpu else {"threads": int(figs[0].row["threads"])}),
            "delegate": "GPU (fp16)" if gpu else "none (CPU)",
            "protocol": "whole-network latency, batch 1, 224x224; mean of the source's runs (std in the figures)",
            "source": f"{CSV_NAME}: Pixel 4 `{config}` {precision} rows of {len(figs)} models "
            f"(qed-usc/mobile-ml-benchmark, dataset/tflite_cnn_e2e.csv), transferred from the note10 profile",
            "notes": f"No per-block Pixel 4 {'GPU' if gpu else 'CPU'} table exists: fitted to whole networks only, of "
            f"{len(FAMILIES)} families ({', '.join(FAMILIES)}). Networks unlike all of them are extrapolations.",
            "provenance": {
                "file": CSV_NAME,
                "selection": {
                    "device": "Pixel 4",
                    "compute_unit": "GPU" if gpu else "CPU",
                    "precision": figs[0].row["precision"],
                    "measurement_note": f"starts with 'config {config}:'",
                },
                "source_columns": list(SOURCE_COLUMNS),
                "upstream": sorted(
                    {f"{f.row['source_repo']}@{f.row['source_commit']}:{f.row['source_path']}" for f in figs}
                ),
            },
            "transfer": {
                "base": "note10 fp32 (Once-for-All's per-block table of a Samsung Galaxy Note10)",
                "base_source": note10.metadata.get("source", ""),
                # the function's name as the bundled profiles record it (the command module
                # latency_models.calibrate imports it from latency_models.predictor.calibration)
                "method": ("per-block corrections dropped, overhead from a least-squares line (for_gpu); " * gpu)
                + "latency_models.calibrate.calibrate: network scale set by least squares (coarse), then "
                "the trainable arrays fitted with a prior towards that start",
                "trainable": list(TRAINABLE if gpu else PROFILE_TRAINABLE),
                "prior_weight": PROFILE_PRIOR,
                "steps": STEPS,
            },
        }
        predictor = _transfer(note10, _measurements(figs), gpu, metadata=metadata)
        in_sample = errors(predictor, _measurements(figs))
        lofo = leave_one_family_out(note10, figs, gpu)
        predictor.metadata["figures"] = [
            {
                "model": f.name,
                "family": f.family,
                "arch": MODELS[f.name].description,
                "latency_ms": f.ms,
                "latency_std_ms": float(f.row["latency_std_ms"]) if f.row["latency_std_ms"] else None,
                "source_macs": f.csv_macs,
                "our_macs": f.our_macs,
                "in_sample_error": round(float(e), 4),
                "lofo_error": round(float(x), 4),
            }
            for f, e, x in zip(figs, in_sample, lofo)
        ]
        predictor.metadata["report"] = _report(figs, in_sample, lofo)
        out[precision] = predictor
        if echo:
            echo(describe_report(precision, predictor.metadata))
    return out


def describe_report(precision: str, metadata: dict[str, Any]) -> str:
    report = metadata["report"]
    lines = [
        f"{metadata['device']} {precision}: in-sample {describe(report['in_sample'])}",
        f"{metadata['device']} {precision}: leave-one-family-out {describe(report['leave_one_family_out'])}",
    ]
    for family, summary in report["leave_one_family_out"]["families"].items():
        lines.append(f"    {family:<20} {describe(summary)}")
    for fig in metadata["figures"]:
        lines.append(
            f"    {fig['model']:<24} {fig['latency_ms']:8.2f} ms  in-sample {fig['in_sample_error']:+6.1%}  "
            f"lofo {fig['lofo_error']:+6.1%}"
        )
    return "\n".join(lines)
