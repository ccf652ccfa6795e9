"""The bundled device profiles, built from the published measurements in the repository's
data/latency-data (see data/README.md); `python -m latency_models.build_profiles` writes them to
latency_models/profiles/.

  note10   Once-for-All's per-block table of a Samsung Galaxy Note10 (w1.2 MobileNetV3 space)
  pixel1   ProxylessNAS's per-block table of a Pixel 1 (MobileNetV2-style space)
  pixel3   HW-NAS-Bench's FBNet per-block table of a Pixel 3
  pixel4   whole-network Pixel 4 CPU figures (1 thread, Cortex-A76 prime core), transferred from
           the Note10 predictor (see latency_models/profiles/pixel4.py)
  pixel4-<config>  the same phone's other configurations of that benchmark (pixel4-1med,
           pixel4-4small, ...: cores and threads in pixel4.CONFIGS; pixel4-gpu, its GPU
           delegate), fitted the same way

Each profile records the files and figures it was fitted on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from functools import partial
from pathlib import Path

from latency_models.predictor.latency_predictor import LatencyPredictor, fit
from latency_models.profiles.pixel4 import CONFIGS, device_name
from latency_models.profiles.pixel4 import build as build_pixel4
from latency_models.tables.latency_table import LatencyTable
from latency_models.tables.other_projects import import_hwnasbench, import_ofa, import_proxyless

DATA = Path(__file__).resolve().parents[2] / "data" / "latency-data"
OFA_RESOLUTIONS = (160, 176, 192, 208, 224)


def _from_table(device: str, table: LatencyTable, description: str) -> dict[str, LatencyPredictor]:
    meta = dataclasses.asdict(table.metadata)
    meta.update(device=device, description=description)
    return {table.metadata.precision: fit(table, metadata=meta)}


def note10(data: Path) -> dict[str, LatencyPredictor]:
    files = [data / "raw" / "ofa_note10" / f"{r}_lookup_table.yaml" for r in OFA_RESOLUTIONS]
    return _from_table("note10", import_ofa(files), "Samsung Galaxy Note10, TFLite (Once-for-All's per-block table)")


def pixel1(data: Path) -> dict[str, LatencyPredictor]:
    table = import_proxyless([data / "raw" / "proxylessnas" / "mobile_trim.yaml"])
    return _from_table("pixel1", table, "Google Pixel 1 (ProxylessNAS's per-block table)")


def pixel3(data: Path) -> dict[str, LatencyPredictor]:
    table = import_hwnasbench(data / "raw" / "hwnasbench" / "fbnet_cached_metrics.json", "pixel3")
    return _from_table("pixel3", table, "Google Pixel 3 (HW-NAS-Bench's FBNet per-block table)")


def pixel4(data: Path, config: str = "1large") -> dict[str, LatencyPredictor]:
    return build_pixel4(data, note10(data)["fp32"], config)


BUILDERS: dict[str, Callable[[Path], dict[str, LatencyPredictor]]] = {
    "note10": note10,
    "pixel1": pixel1,
    "pixel3": pixel3,
    **{device_name(config): partial(pixel4, config=config) for config in CONFIGS},
}
