"""Benchmark: how the error of a calibrated profile falls with the number of measured networks.

    python benchmarks/calibration_curve.py [--data data/latency-data] [--ks 0,5,10,20,50]
                                           [--seeds 5] [--test 1000] [--steps 1000]

HELP (HayeonLee/HELP) published the whole-network latency of 5000 FBNet-space architectures
(CIFAR-100 shapes) measured on four phones: pixel2, samsung_a50, samsung_s7, essential_ph_1
(integer milliseconds, so +-0.5 ms of rounding on 10-100 ms figures). For each phone and each k,
the Pixel 3 profile (HW-NAS-Bench's per-block table; the bundled file, or fitted now if it is not
built yet) is calibrated with `latency_models.predictor.calibration.calibrate` on k architectures drawn at
random and scored on `--test` others (a subsample, to keep the run short; the same for every k):
share of predictions within +-10%, RMSPE, Kendall's tau (tau-b: the integer figures tie). k = 0
is the Pixel 3 profile as it is. Means over `--seeds` draws; prints a markdown table.

The last column is a noise ceiling, not a calibration: a per-block least-squares fit (one free
latency per distinct block, plus a constant) on all the architectures outside the test draw.
With ~4000 measured networks and no prior, it shows how much of the error is the figures' own
noise (run-to-run variation and integer rounding) rather than the predictor's.
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from latency_models.predictor.calibration import STEPS, calibrate
from latency_models.predictor.latency_predictor import LatencyPredictor, Measurement
from latency_models.profiles.bundled import DATA, pixel3
from latency_models.profiles.registry import UnknownTarget, load_predictor
from latency_models.tables.signature import spec_blocks
from search_spaces.fbnet import FBNetSpace

CSV_NAME = "help_fbnet_cifar100_mobile_latency.csv"
PHONES = ("pixel2", "samsung_a50", "samsung_s7", "essential_ph_1")


def base_predictor(data: Path) -> tuple[LatencyPredictor, str]:
    try:
        return load_predictor("pixel3", "fp32"), "bundled pixel3 profile"
    except UnknownTarget:
        return pixel3(data)["fp32"], "pixel3 profile fitted now (no bundled file yet)"


class Networks:
    """The HELP architectures as specs, with a block-count matrix for fast prediction."""

    def __init__(self, path: Path):
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
        space = FBNetSpace("cifar")
        self.specs = [
            space.materialize(space.from_values({f"layer{i}": op for i, op in enumerate(row["arch_str"].split())}))
            for row in rows
        ]
        self.ms = {phone: np.array([float(row[f"{phone}_ms"]) for row in rows]) for phone in PHONES}
        index: dict[str, int] = {}
        self.blocks = []
        entries = []
        for n, spec in enumerate(self.specs):
            for block in spec_blocks(spec):
                if block.key not in index:
                    index[block.key] = len(self.blocks)
                    self.blocks.append(block)
                entries.append((n, index[block.key]))
        self.counts = np.zeros((len(self.specs), len(self.blocks)))
        for n, b in entries:
            self.counts[n, b] += 1

    def predict(self, predictor: LatencyPredictor, which: np.ndarray) -> np.ndarray:
        return self.counts[which] @ predictor.in_network_ms(self.blocks) + predictor.network_overhead_ms


def ceiling(networks: Networks, measured: np.ndarray, test: np.ndarray) -> np.ndarray:
    """Per-block least squares on every architecture outside `test`, predicting `test`."""
    train = np.setdiff1d(np.arange(len(measured)), test)
    design = np.hstack([networks.counts, np.ones((len(measured), 1))])
    weights, *_ = np.linalg.lstsq(design[train], measured[train], rcond=None)
    return design[test] @ weights


def score(predicted: np.ndarray, measured: np.ndarray) -> tuple[float, float, float]:
    e = predicted / measured - 1
    return float(np.mean(np.abs(e) <= 0.10)), float(np.sqrt(np.mean(e**2))), float(kendalltau(predicted, measured)[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="folder with the published latency data")
    parser.add_argument("--ks", default="0,5,10,20,50", help="numbers of measured architectures to calibrate on")
    parser.add_argument("--seeds", type=int, default=5, help="random draws per (phone, k)")
    parser.add_argument("--test", type=int, default=1000, help="held-out architectures scored per draw")
    parser.add_argument("--steps", type=int, default=STEPS, help="optimiser steps per calibration")
    parser.add_argument("--phones", default=",".join(PHONES), help="phone columns to use")
    args = parser.parse_args()
    ks = [int(k) for k in args.ks.split(",")]
    phones = args.phones.split(",")

    start = time.perf_counter()
    base, base_note = base_predictor(args.data)
    networks = Networks(args.data / CSV_NAME)
    n = len(networks.specs)
    print(
        f"{n} architectures, {len(networks.blocks)} distinct blocks; base: {base_note}; "
        f"{args.seeds} draws per cell, each scored on {args.test} held-out architectures"
    )
    results: dict[tuple[str, int | str], np.ndarray] = {}
    for phone in phones:
        measured = networks.ms[phone]
        cells = []
        for seed in range(args.seeds):
            test = np.random.default_rng(seed).permutation(n)[max(ks) : max(ks) + args.test]
            cells.append(score(ceiling(networks, measured, test), measured[test]))
        results[(phone, "ceiling")] = np.mean(cells, axis=0)
        for k in ks:
            cells = []
            for seed in range(args.seeds):
                order = np.random.default_rng(seed).permutation(n)
                train, test = order[:k], order[max(ks) : max(ks) + args.test]  # same test set for every k
                if k:
                    predictor = calibrate(
                        base,
                        [Measurement(networks.specs[i], float(measured[i]), label=str(i)) for i in train],
                        steps=args.steps,
                    )
                else:
                    predictor = base
                cells.append(score(networks.predict(predictor, test), measured[test]))
            results[(phone, k)] = np.mean(cells, axis=0)
            w, r, t = results[(phone, k)]
            print(
                f"  {phone} k={k}: within10 {w:.1%} RMSPE {r:.1%} tau {t:.3f}  ({time.perf_counter() - start:.0f} s)",
                flush=True,
            )

    print()
    print("| phone | " + " | ".join(f"k={k}" for k in ks) + " | ceiling |")
    print("|---|" + "---|" * (len(ks) + 1))
    for phone in phones:
        cells = [f"{w:.0%} / {r:.1%} / {t:.2f}" for w, r, t in (results[(phone, k)] for k in [*ks, "ceiling"])]
        print(f"| {phone} | " + " | ".join(cells) + " |")
    print()
    print(
        f"Cells: share within +-10% / RMSPE / Kendall tau-b on {args.test} held-out architectures, mean of "
        f"{args.seeds} random draws of the k calibration architectures. Base: {base_note}. Ceiling: per-block "
        f"least squares on the ~{n - args.test} architectures outside the test draw. "
        f"Total {time.perf_counter() - start:.0f} s."
    )


if __name__ == "__main__":
    main()
