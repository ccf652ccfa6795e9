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
  would be off by -4% (w1) to +22% (wd4) in MACs, so `pytorchcv_mobilenet_v2` builds pytorchcv's
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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from latency_models.calibration import PRIOR_WEIGHT, STEPS, TRAINABLE, calibrate, describe, errors, summarize
from latency_models.predictor import LatencyPredictor, Measurement
from search_spaces import zoo
from search_spaces.arch_spec import ArchSpec, Conv, Dense, GlobalPool, MBConv
from search_spaces.graph import count_macs
from search_spaces.space import make_divisible
from search_spaces.zoo.mobilenet import V2_SETTINGS, V3_LARGE, V3_SMALL

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


# --- pytorchcv's definitions where they differ from ours --------------------------------------


def pytorchcv_mobilenet_v2(width: float, first_expand_conv: bool = True, resolution: int = 224) -> ArchSpec:
    """pytorchcv's MobileNetV2 (pytorch/pytorchcv/models/mobilenetv2.py, get_mobilenetv2):
    widths int(c * w), expanded width in * 6, a 1x1 conv (in -> in) before the first block's
    depthwise conv unless `first_expand_conv` is False (pytorchcv's mobilenetv2b), last conv
    1280 wide unless w > 1, classifier without bias (a 1x1 conv)."""
    stem_ch = 32 if width == 1 else int(32 * width)
    channels, layers = stem_ch, []
    for t, c, n, s in V2_SETTINGS:
        out = c if width == 1 else int(c * width)
        for j in range(n):
            stride = s if j == 0 else 1
            if t == 1:
                layers.append(
                    MBConv(channels, out, 3, stride, 1, channels, activation="relu6", expand_conv=first_expand_conv)
                )
            else:
                layers.append(MBConv(channels, out, 3, stride, 6, channels * 6, activation="relu6"))
            channels = out
    last = int(1280 * width) if width > 1 else 1280
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, stem_ch, 3, 2, activation="relu6"),),
        layers=tuple(layers),
        head=(Conv(channels, last, 1, activation="relu6"), GlobalPool(last)),
        classifier=Dense(last, 1000, bias=False),
        name=f"pytorchcv_mobilenetv2{'' if first_expand_conv else 'b'}_{width}",
    )


def pytorchcv_mobilenet_v3(size: str, width: float, resolution: int = 224) -> ArchSpec:
    """pytorchcv's MobileNetV3 (pytorch/pytorchcv/models/mobilenetv3.py, get_mobilenetv3):
    output and expanded widths are make_divisible(c * w) each (so a block's expansion ratio is
    not kept), an expand conv only when expanded != output width, SE squeeze
    make_divisible(expanded / 4) with a hard-sigmoid gate, pre-pool conv 960 (Large) / 576
    (Small) unless w > 1, then a 1280-wide 1x1 conv (no BN, no bias) and a biased classifier."""
    rows, pre_pool = (V3_LARGE, 960) if size == "large" else (V3_SMALL, 576)

    def scale(c: int) -> int:
        return c if width == 1 else make_divisible(c * width)

    channels = scale(16)
    layers = []
    for kernel, expanded, out, se, act, stride in rows:
        mid, out = scale(expanded), scale(out)
        expand = mid != out
        if not expand and mid != channels:
            raise ValueError(f"pytorchcv MobileNetV3 {size} {width}: block without expand conv changes width")
        layers.append(
            MBConv(
                channels,
                out,
                kernel,
                stride,
                mid / channels if expand else 1,
                mid,
                se_ch=make_divisible(mid / 4) if se else 0,
                activation=act,
                expand_conv=expand,
            )
        )
        channels = out
    wide = make_divisible(pre_pool * width) if width > 1 else pre_pool
    return ArchSpec(
        resolution=resolution,
        stem=(Conv(3, scale(16), 3, 2, activation="hswish"),),
        layers=tuple(layers),
        head=(
            Conv(channels, wide, 1, activation="hswish"),
            GlobalPool(wide),
            Conv(wide, 1280, 1, activation="hswish", batch_norm=False, bias=False),
        ),
        classifier=Dense(1280, 1000),
        name=f"pytorchcv_mobilenetv3_{size}_{width}",
    )


# --- the published figures ---------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    family: str
    build: Callable[[], ArchSpec]
    ours: str  # what it is in our terms


_WIDTHS = {"w1": 1.0, "w3d4": 0.75, "wd2": 0.5, "wd4": 0.25, "w7d20": 0.35, "w5d4": 1.25}
MODELS: dict[str, Model] = {}
for _suffix, _w in list(_WIDTHS.items())[:4]:
    MODELS[f"mobilenet_{_suffix}"] = Model(
        "mobilenet_v1", partial(zoo.get, f"mobilenet_v1_{_w}"), f"zoo mobilenet_v1_{_w}"
    )
    MODELS[f"mobilenetv2_{_suffix}"] = Model(
        "mobilenet_v2", partial(pytorchcv_mobilenet_v2, _w), f"pytorchcv MobileNetV2 {_w}"
    )
    MODELS[f"mobilenetv2b_{_suffix}"] = Model(
        "mobilenet_v2", partial(pytorchcv_mobilenet_v2, _w, False), f"pytorchcv MobileNetV2b {_w}"
    )
for _size, _suffixes in (("large", ("w1", "w3d4", "wd2", "w7d20")), ("small", ("w1", "w5d4", "wd2", "w7d20"))):
    for _suffix in _suffixes:
        MODELS[f"mobilenetv3_{_size}_{_suffix}"] = Model(
            f"mobilenet_v3_{_size}",
            partial(pytorchcv_mobilenet_v3, _size, _WIDTHS[_suffix]),
            f"pytorchcv MobileNetV3-{_size.title()} {_WIDTHS[_suffix]}",
        )
MODELS["mnasnet_a1"] = Model("mnasnet", partial(zoo.get, "mnasnet_a1"), "zoo mnasnet_a1")
for _v in ("cpu", "gpu", "mobile"):
    MODELS[f"proxylessnas_{_v}"] = Model(
        "proxylessnas", partial(zoo.get, f"proxylessnas_{_v}"), f"zoo proxylessnas_{_v}"
    )


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
                "arch": MODELS[f.name].ours,
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
