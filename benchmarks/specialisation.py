"""Benchmark: does platform-awareness pay? A cross-device specialisation matrix.

    python benchmarks/specialisation.py [--out runs/specialisation] [--seeds 3]
                                        [--devices pixel4,pixel4-gpu,note10,pixel1,pixel3]

For each device D the search runs at D's budget (D's predicted latency of MobileNetV3-Large-1.0
at 224 px, bundled profile, fp32) with its defaults (the bundled ImageNet estimator), once per
seed. Every choice is then priced on every device E: where it meets E's budget, the cell is its
mapped ImageNet top-1 (the estimate does not depend on the device); where it does not, its
latency overrun on E. Rows: searched for; columns: deployed on.

For each column, the gain of the diagonal (the choice searched for E) over the best foreign
choice that meets E's budget, seed by seed (the same seed's searches: mean and half-range), and
over MobileNetV3-Large-1.0's published top-1. The host joins the devices where this machine has
a measured host profile (`python -m latency_models.measure`), unless --devices says otherwise.

Each search goes to OUT/<device>/seed<k>; a finished one (arch.json) is read back instead of
run again. The matrix is written to OUT/matrix.json and OUT/matrix.png.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from common.files import write_atomic, write_figure
from latency_models.profiles.registry import load_predictor, saved_host_predictor
from nas.search.preparation import load_estimator, published_form
from nas.search.record import SearchRecord
from nas.search.run import budget_search
from nas.search.settings import SearchSettings
from search_spaces import zoo

DEVICES = ("pixel4", "pixel4-gpu", "note10", "pixel1", "pixel3")
REFERENCE = "mobilenet_v3_large_1.0"  # each device's budget is its predicted latency of this network
PRECISION = "fp32"


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/specialisation")
    p.add_argument("--seeds", type=int, default=3)
    default = ",".join(DEVICES)
    p.add_argument("--devices", default=None, help=f"comma list (default: {default}, and host where measured)")
    return p.parse_args()


def default_devices() -> list[str]:
    return [*DEVICES, *(["host"] if saved_host_predictor(PRECISION) is not None else [])]


def matrix(devices: list[str], budgets: dict, choices: dict, predictors: dict) -> dict:
    """cells[D][E]: per seed, the choice searched for D priced on E (latency, meets E's budget)."""
    cells = {}
    for d in devices:
        cells[d] = {}
        for e in devices:
            cells[d][e] = []
            for record in choices[d]:
                latency = predictors[e].spec_ms(record.choice.spec, PRECISION)
                cells[d][e].append(
                    {
                        "latency_ms": latency,
                        "meets": latency <= budgets[e] * (1 + 1e-9),
                        "overrun": latency / budgets[e] - 1,
                        "mapped_top1": record.accuracy.mapped.top1,
                    }
                )
    return cells


def kept(record: SearchRecord) -> dict:
    """What matrix.json keeps of each choice."""
    return {
        "spec_hash": record.choice.spec_hash,
        "resolution": record.choice.resolution,
        "mapped_top1": record.accuracy.mapped.top1,
        "estimated_top1": record.accuracy.estimated_top1,
        "macs": record.costs.macs,
        "predicted_latency_ms": record.costs.latency_ms,
    }


def column_gains(devices: list[str], cells: dict, reference_top1: float, seeds: int) -> dict:
    """Per column E: the diagonal's gain over the best foreign choice meeting E's budget, seed by
    seed, and over the reference network's published top-1 (points)."""
    gains = {}
    for e in devices:
        own, foreign, winners = [], [], []
        for s in range(seeds):
            diag = cells[e][e][s]
            rivals = [(cells[d][e][s]["mapped_top1"], d) for d in devices if d != e and cells[d][e][s]["meets"]]
            own.append(diag["mapped_top1"])
            if rivals:
                best, who = max(rivals)
                foreign.append(100 * (diag["mapped_top1"] - best))
                winners.append(who)
        gains[e] = {
            "diagonal_meets_every_seed": all(cells[e][e][s]["meets"] for s in range(seeds)),
            "over_best_foreign_points": foreign,  # one per seed where a foreign choice meets the budget
            "best_foreign": winners,
            "over_reference_points": [100 * (t - reference_top1) for t in own],
        }
    return gains


def spread(values, scale: float = 1.0) -> str:
    if not len(values):
        return "     -     "
    v = scale * np.asarray(values, dtype=float)
    return f"{v.mean():+5.2f} +-{(v.max() - v.min()) / 2:4.2f}"


def cell_text(runs: list[dict]) -> str:
    """Mean mapped top-1 where every seed's choice meets the budget; else how many meet and the
    mean overrun of those that do not."""
    met = [r for r in runs if r["meets"]]
    if len(met) == len(runs):
        return f"{100 * np.mean([r['mapped_top1'] for r in runs]):.2f}%"
    over = np.mean([r["overrun"] for r in runs if not r["meets"]])
    return f"{len(met)}/{len(runs)} +{100 * over:.1f}%"


def print_matrix(devices: list[str], budgets: dict, cells: dict) -> None:
    width = max(12, *(len(d) + 2 for d in devices))
    corner = "searched for / deployed on"
    print(f"\n{corner:<28}" + "".join(f"{e:>{width}}" for e in devices))
    print(f"{'budget (ms)':<28}" + "".join(f"{budgets[e]:>{width}.2f}" for e in devices))
    for d in devices:
        print(f"{d:<28}" + "".join(f"{cell_text(cells[d][e]):>{width}}" for e in devices))
    print(
        "cell: mean mapped ImageNet top-1 of the seeds' choices when all meet the column's budget; "
        "else k/n meet and the others' mean latency overrun"
    )


def plot(path: Path, devices: list[str], cells: dict) -> None:
    """Heat map: colour is the mean mapped top-1 where every seed meets the budget; grey
    (with the overrun) where not."""
    import matplotlib  # why: ~0.5 s to import, and only the plot needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = len(devices)
    values = np.full((n, n), np.nan)
    for i, d in enumerate(devices):
        for j, e in enumerate(devices):
            if all(r["meets"] for r in cells[d][e]):
                values[i, j] = 100 * np.mean([r["mapped_top1"] for r in cells[d][e]])
    fig, ax = plt.subplots(figsize=(1.5 * n + 2, 1.2 * n + 1.5))
    cmap = plt.get_cmap("viridis").copy()
    cmap.set_bad("#d9d9d9")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=cmap)
    for i, d in enumerate(devices):
        for j, e in enumerate(devices):
            weight = "bold" if i == j else "normal"
            dark = np.isfinite(values[i, j]) and image.norm(values[i, j]) < 0.5  # white text on dark cells
            ax.text(
                j,
                i,
                cell_text(cells[d][e]),
                ha="center",
                va="center",
                fontsize=8,
                fontweight=weight,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(n), devices, rotation=30, ha="right")
    ax.set_yticks(range(n), devices)
    ax.set_xlabel("deployed on (its budget: its predicted latency of MobileNetV3-Large-1.0)")
    ax.set_ylabel("searched for")
    fig.colorbar(image, ax=ax, label="mapped ImageNet top-1 (%), grey: over budget")
    ax.set_title("Specialisation: the choice searched for each device, on every device")
    fig.tight_layout()
    write_figure(path, fig, dpi=120)
    plt.close(fig)


def main() -> None:
    args = parse_args()
    started = time.perf_counter()
    devices = args.devices.split(",") if args.devices else default_devices()
    estimator, estimator_path = load_estimator(SearchSettings(target=devices[0]))
    scope = estimator.scope
    reference = published_form(REFERENCE, scope)
    reference_top1 = zoo.published_top1(REFERENCE)[0] / 100
    predictors = {d: load_predictor(d, PRECISION) for d in devices}
    budgets = {d: predictors[d].spec_ms(reference, PRECISION) for d in devices}
    print(f"estimator {estimator_path} ({scope.describe()}); {PRECISION}; seeds 0..{args.seeds - 1}")
    print(f"budgets: each device's predicted latency of {REFERENCE} at {reference.resolution} px")
    out = Path(args.out)
    choices = {}
    for d in devices:
        choices[d] = [budget_search(d, budgets[d], s, out / d / f"seed{s}") for s in range(args.seeds)]
        hashes = ", ".join(r.choice.spec_hash for r in choices[d])
        print(f"searched {d:<11} budget {budgets[d]:7.2f} ms: {hashes}", flush=True)
    cells = matrix(devices, budgets, choices, predictors)
    gains = column_gains(devices, cells, reference_top1, args.seeds)
    print_matrix(devices, budgets, cells)
    print(
        f"\n{'deployed on':<12} {'diagonal':>9} {'vs best foreign (points)':>26}  {'best foreign':<28} "
        f"{'vs ' + REFERENCE + ' (' + format(100 * reference_top1, '.1f') + '%)':>34}"
    )
    for e in devices:
        g = gains[e]
        diag = 100 * np.mean([r["mapped_top1"] for r in cells[e][e]])
        met = f"{len(g['over_best_foreign_points'])}/{args.seeds} seeds"
        print(
            f"{e:<12} {diag:8.2f}% {spread(g['over_best_foreign_points']):>17} ({met}) "
            f" {','.join(sorted(set(g['best_foreign']))) or '(none meets)':<28} "
            f"{spread(g['over_reference_points']):>34}"
        )
    seconds = time.perf_counter() - started
    document = {
        "kind": "platform-nas/benchmark-specialisation",
        "estimator": str(estimator_path),
        "precision": PRECISION,
        "reference": {"name": REFERENCE, "resolution": reference.resolution, "published_top1": reference_top1},
        "seeds": args.seeds,
        "devices": devices,
        "budgets_ms": budgets,
        "choices": {d: [kept(r) for r in choices[d]] for d in devices},
        "cells": cells,
        "gains": gains,
        "seconds": seconds,
    }
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "matrix.json", json.dumps(document, indent=2) + "\n")
    plot(out / "matrix.png", devices, cells)
    print(f"\nwrote {out / 'matrix.json'} and {out / 'matrix.png'} ({seconds:.0f} s)")


if __name__ == "__main__":
    main()
