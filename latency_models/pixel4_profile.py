"""The bundled `pixel4` profile: Google Pixel 4 CPU, TFLite, one thread on the 2.84 GHz
Cortex-A76 prime core (mobile-ml-benchmark's `1large` configuration), fp32 and int8.

No per-block table of the Pixel 4 CPU is public. What is public are whole-network latencies of
well-known mobile CNNs measured in that configuration (qed-usc/mobile-ml-benchmark,
dataset/tflite_cnn_e2e.csv, collected in data/latency-data/published_models.csv): the
models are pytorchcv (osmr/imgclsmob) networks converted to TFLite. This module maps those
models to ArchSpecs and transfers the Note10 predictor (fitted on Once-for-All's per-block
table) to them with `latency_models.calibration.calibrate`, the same few-shot code path a user's
own phone goes through (`python -m latency_models.calibrate`).

The mapping, checked against the FLOPS figure each CSV row carries (2 x multiply-adds; the
counts below are ours, conv + dense MACs):

- mobilenet_{w1,w3d4,wd2,wd4} -> our MobileNetV1 1.0/0.75/0.5/0.25 (zoo): MACs equal to 0.1%.
  pytorchcv uses ReLU where Slim uses ReLU6 (same cost once fused into the conv).
- mnasnet_a1, proxylessnas_{cpu,gpu,mobile} -> the zoo models: MACs equal to 0.2%.
- mobilenetv2_* are NOT our (Slim) MobileNetV2 below width 1: pytorchcv scales widths by
  int(c * w) (Slim: make_divisible(c * w, 8)), expands by exactly in * 6, keeps a 1x1 expand conv
  in the first block (t = 1), and keeps the 1280-wide last conv at every width. The zoo model
  would be off by -4% (w1) to +22% (wd4) in MACs, so `pytorchcv_mobilenet_v2`
  (search_spaces.zoo.pytorchcv, with the other builders) builds pytorchcv's
  definition in our IR; `mobilenetv2b_*` is the same without that first expand conv (at w1 it
  is exactly our mobilenet_v2_1.0) and is used too.
- mobilenetv3_{large,small}_* are not our (Slim) MobileNetV3 either: pytorchcv scales the
  expanded widths as make_divisible(e * w) (Slim: make_divisible(scaled input * ratio)), keeps
  the pre-pool conv at 960/576 below width 1, and its classifier conv is 1280 wide for Small too
  (Slim: 1024). The zoo models would be off by -8% to +7% in MACs; `pytorchcv_mobilenet_v3`
  builds pytorchcv's definition. The CSV's FLOPS then agree to 1-3.5% (the rest is counting:
  the FLOPS figure includes element-wise work, h-swish and SE scaling, that our MAC count
  leaves out; the gap is 80-95% of our element-wise count).

Both builders reproduce the parameter counts pytorchcv's own tests assert, exactly
(tests/test_calibrate.py). 24 figures per precision, in six families for leave-one-family-out:
mobilenet_v1 (4), mobilenet_v2 (8: v2 and v2b), mobilenet_v3_large (4), mobilenet_v3_small (4),
mnasnet (1), proxylessnas (3).

The fit (`build`): `calibrate` on all 24 figures of a precision, from the Note10 predictor. What
moves is the price of each kind of work, the network scale and the overhead, near the Note10's
values; the Note10's per-block shape corrections are kept. Results are stored in the profile's
metadata and printed by `python -m latency_models.build_profiles --device pixel4`: fp32 24/24
within +-10% in-sample (RMSPE 4.5%) and 22/24 leave-one-family-out (RMSPE 5.7%); int8 20/24 and
20/24 (RMSPE 6.2% and 7.3%). The int8 misses are MobileNetV2 at the extreme widths (w1 +13%,
wd4 -13%), likely because pytorchcv's widths there (18, 108, 6, ...) are not multiples of the
8/16 channels int8 kernels pack: priced per padded channel, their ms per MAC lines up with
MobileNetV1's much better, and the work terms count unpadded MACs.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.calibration import PRIOR_WEIGHT, STEPS, TRAINABLE, calibrate, describe, errors, summarize
from latency_models.predictor import LatencyPredictor, Measurement
from search_spaces.arch_spec import ArchSpec
from search_spaces.graph import count_macs
from search_spaces.zoo.pytorchcv import MODELS as PYTORCHCV
from search_spaces.zoo.pytorchcv import PytorchcvModel

CSV_NAME = "published_models.csv"
CONFIG = "config 1large:"  # measurement_note prefix of the 1-thread prime-core rows
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
FAMILIES = ("mobilenet_v1", "mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "mnasnet", "proxylessnas")


# --- the published figures ---------------------------------------------------------------------


# The models fitted so far: pytorchcv's MobileNet-style networks (search_spaces.zoo.pytorchcv).
MODELS: dict[str, PytorchcvModel] = {name: m for name, m in PYTORCHCV.items() if m.family in FAMILIES}


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


def figures(data: Path, precision: str = "fp32") -> list[Figure]:
    """The Pixel 4 `1large` figures of the models in MODELS, in MODELS order."""
    path = Path(data) / CSV_NAME
    with open(path, newline="") as handle:
        rows = [
            r
            for r in csv.DictReader(handle)
            if r["device"] == "Pixel 4"
            and r["compute_unit"] == "CPU"
            and r["precision"] == precision
            and r["measurement_note"].startswith(CONFIG)
        ]
    by_name = {r["model"]: r for r in rows}
    missing = [name for name in MODELS if name not in by_name]
    if missing:
        raise FileNotFoundError(f"{path}: no Pixel 4 {CONFIG[:-1]} {precision} row for {', '.join(missing)}")
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


def leave_one_family_out(base: LatencyPredictor, figs: list[Figure]) -> np.ndarray:
    """Relative error on each figure of a profile calibrated without its family."""
    out = np.zeros(len(figs))
    for family in FAMILIES:
        held = [i for i, f in enumerate(figs) if f.family == family]
        rest = [f for f in figs if f.family != family]
        predictor = calibrate(base, _measurements(rest))
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
    data: Path, note10: LatencyPredictor, echo: Callable[[str], None] | None = print
) -> dict[str, LatencyPredictor]:
    """{"fp32": ..., "int8": ...}: the Note10 predictor calibrated on the Pixel 4 `1large` figures
    of each precision, with the figures, in-sample and leave-one-family-out errors in its metadata."""
    out = {}
    for precision in ("fp32", "int8"):
        figs = figures(data, precision)
        metadata = {
            "device": "pixel4",
            "precision": precision,
            "description": "Google Pixel 4 CPU, TFLite, 1 thread on the Cortex-A76 prime core (2.84 GHz)",
            "soc": figs[0].row["soc"],
            "runtime": "tflite",
            "runtime_version": figs[0].row["runtime"],
            "threads": 1,
            "delegate": "none (CPU)",
            "protocol": "whole-network latency, batch 1, 224x224; mean of the source's runs (std in the figures)",
            "source": f"{CSV_NAME}: Pixel 4 `1large` {precision} rows of {len(figs)} models "
            f"(qed-usc/mobile-ml-benchmark, dataset/tflite_cnn_e2e.csv), transferred from the note10 profile",
            "notes": "No per-block Pixel 4 CPU table exists: fitted to whole networks only. Networks unlike these "
            "MobileNet-style models (no depthwise convs, very wide or very narrow layers) are extrapolations.",
            "provenance": {
                "file": CSV_NAME,
                "selection": {
                    "device": "Pixel 4",
                    "compute_unit": "CPU",
                    "precision": precision,
                    "measurement_note": f"starts with {CONFIG!r}",
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
                # latency_models.calibrate imports it from latency_models.calibration)
                "method": "latency_models.calibrate.calibrate: network scale set by least squares (coarse), then "
                "the trainable arrays fitted with a prior towards that start",
                "trainable": list(TRAINABLE),
                "prior_weight": PRIOR_WEIGHT,
                "steps": STEPS,
            },
        }
        predictor = calibrate(note10, _measurements(figs), metadata=metadata)
        in_sample = errors(predictor, _measurements(figs))
        lofo = leave_one_family_out(note10, figs)
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
        f"pixel4 {precision}: in-sample {describe(report['in_sample'])}",
        f"pixel4 {precision}: leave-one-family-out {describe(report['leave_one_family_out'])}",
    ]
    for family, summary in report["leave_one_family_out"]["families"].items():
        lines.append(f"    {family:<20} {describe(summary)}")
    for fig in metadata["figures"]:
        lines.append(
            f"    {fig['model']:<24} {fig['latency_ms']:8.2f} ms  in-sample {fig['in_sample_error']:+6.1%}  "
            f"lofo {fig['lofo_error']:+6.1%}"
        )
    return "\n".join(lines)
