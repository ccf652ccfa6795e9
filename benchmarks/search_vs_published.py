"""Benchmark: the search's choice against published ImageNet models at the same predicted latency.

    python benchmarks/search_vs_published.py [--out runs/search_vs_published] [--seeds 3]
                                             [--devices note10,pixel1,pixel4]

1. On note10, pixel1 and pixel4, the budgets are the device's predicted latency (bundled profile,
   fp32) of MobileNetV3-Large-1.0, MobileNetV2-1.0 and MnasNet-A1 at their published 224 px. For
   each budget and seed the search runs with its defaults (bundled ImageNet estimator) and the
   choice's mapped top-1 is set against the best published zoo model within the budget.
2. On note10 and pixel1, each of Once-for-All's networks specialised for that device is priced on
   the same profile and is the budget of a search in turn; the choice is set against the top-1
   in the network's name.

Each search goes to OUT/<device>/<budget's network>/seed<k>; a finished one (arch.json) is read
back instead of run again, an interrupted one continues. Everything printed is also written to
OUT/results.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import read_json, write_atomic
from latency_models.profiles.registry import load_predictor
from nas.accuracy.ofa_predictor import DATA
from nas.search.preparation import load_estimator, published_form
from nas.search.run import budget_search
from nas.search.settings import SearchSettings
from search_spaces import zoo
from search_spaces.ofa_config import parse_net_config

DEVICES = ("note10", "pixel1", "pixel4")
BUDGET_MODELS = ("mobilenet_v3_large_1.0", "mobilenet_v2_1.0", "mnasnet_a1")
OFA_DEVICES = ("note10", "pixel1")  # Once-for-All published specialised networks for these (of ours)
PRECISION = "fp32"
HEADER = """\
mapped   = estimate of the choice's ImageNet validation top-1 after fine-tuning: Once-for-All's
           predictor (raw) through a mapping fitted on Once-for-All's fine-tuned width-1.2 networks
           (leave-one-out RMSE {rmse:.2f} points); mean over seeds {seeds}, +- half their range
raw      = Once-for-All's predictor itself (inherited supernet weights, not fine-tuned), mean; marked *
           where it lies outside the raw {low:.1f}..{high:.1f}% the mapping was fitted on (extrapolated)
lat, px  = the choice's predicted latency on the device (mean over seeds) and its resolutions
vs       = the published model compared: the best zoo model (by published top-1) whose predicted
           latency on the device is within the budget, or the Once-for-All network that is the budget
top-1    = as published by the model's authors (zoo: their README/paper; Once-for-All: the network's name)
gain     = mapped - published, points (mean +- half-range over seeds); the mapping alone is off by
           about {rmse:.1f} points, so gains below that say little"""


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/search_vs_published")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--devices", default=",".join(DEVICES), help="comma list (default: %(default)s)")
    return p.parse_args()


def ofa_networks(device: str) -> list[dict]:
    """Once-for-All's specialised networks for `device`, with what their names and configs say."""
    nets = []
    for path in sorted((DATA / "ofa_specialized").glob(f"{device}_*")):
        _, latency, top1, finetune = path.name.split("_")
        config = read_json(path / "net.config", InputError)
        nets.append(
            {
                "name": path.name,
                "config": config,
                "image_size": int(read_json(path / "run.config", InputError)["image_size"]),
                "named_latency_ms": float(latency.removeprefix("lat-").removesuffix("ms")),
                "published_top1": float(top1.removeprefix("top1-")) / 100,
                "finetune_epochs": int(finetune.removeprefix("finetune-")),
                # the stem tells the supernet apart: 24 channels width 1.2 (the estimator's), 16 width 1.0
                "width": 1.2 if config["first_conv"]["out_channels"] == 24 else 1.0,
            }
        )
    return sorted(nets, key=lambda n: n["named_latency_ms"])


def ofa_caveat(net: dict, scope) -> str:
    """What makes this comparison less than like for like."""
    notes = [f"ft{net['finetune_epochs']}", f"w{net['width']}"]
    if net["name"] in scope.mapping.fitted_on:
        notes.append("in mapping fit")  # the mapping was fitted to this network's own top-1
    if net["image_size"] not in scope.resolutions:
        notes.append(f"{net['image_size']}px")  # a resolution the search cannot choose
    return " ".join(notes)


def compare(device: str, label: str, budget: float, rival: dict, seeds: int, out: Path) -> dict:
    """The choices of every seed under `budget` against `rival` (name, published_top1, latency)."""
    records = [budget_search(device, budget, s, out / device / label / f"seed{s}") for s in range(seeds)]
    mapped = np.array([r.accuracy.mapped.top1 for r in records])
    gains = 100 * (mapped - rival["published_top1"])
    return {
        "budget_ms": budget,
        "budget_from": label,
        "mapped_top1": mapped.tolist(),
        "estimated_top1": [r.accuracy.estimated_top1 for r in records],
        "predicted_latency_ms": [r.costs.latency_ms for r in records],
        "resolution": [r.choice.resolution for r in records],
        "spec_hash": [r.choice.spec_hash for r in records],
        "rival": rival,
        "gain_points": gains.tolist(),
        "mean_gain_points": float(gains.mean()),
    }


def best_published(baselines: list[dict], budget: float) -> dict:
    """The zoo model of highest published top-1 within `budget` (the budget's own model at least)."""
    within = [b for b in baselines if b["predicted_latency_ms"] <= budget * (1 + 1e-9)]
    return max(within, key=lambda b: (b["published_top1"], -b["predicted_latency_ms"]))  # a tie: the faster


def spread(values, scale: float = 100) -> str:
    v = scale * np.asarray(values)
    return f"{v.mean():5.1f} +-{(v.max() - v.min()) / 2:3.1f}"


def print_row(row: dict, raw_range: tuple[float, float]) -> None:
    rival, raw = row["rival"], np.mean(row["estimated_top1"])
    mark = " " if raw_range[0] <= raw <= raw_range[1] else "*"
    print(
        f"{row['budget_from']:<38} {row['budget_ms']:7.2f} {spread(row['mapped_top1'])} "
        f"{100 * raw:5.1f}{mark}{np.mean(row['predicted_latency_ms']):6.2f} "
        f"{'/'.join(map(str, row['resolution'])):<11} | {rival['name']:<24} {100 * rival['published_top1']:5.1f} "
        f"{rival['predicted_latency_ms']:6.2f} {spread(row['gain_points'], 1)}  {rival.get('caveat', '')}",
        flush=True,  # a row per three searches: show progress
    )


def print_table_head(title: str) -> None:
    print(f"\n{title}")
    print(
        f"{'budget: predicted latency of':<38} {'ms':>7} {'mapped':>11} {'raw':>5} {'lat':>6} {'px':<11} | "
        f"{'vs':<24} {'top-1':>5} {'lat':>6} {'gain':>10}  caveat"
    )


def device_rows(device: str, args, scope) -> tuple[list[dict], list[dict], list[str]]:
    """The zoo-budget rows and the Once-for-All rows of one device, printed as they finish."""
    predictor = load_predictor(device, PRECISION)
    baselines = []  # every zoo model with a published top-1, priced as the search prices them
    for name in zoo.names():
        if zoo.published_top1(name):
            spec = published_form(name, scope)
            latency = predictor.spec_ms(spec, PRECISION)
            top1 = zoo.published_top1(name)[0] / 100
            baselines.append({"name": name, "published_top1": top1, "predicted_latency_ms": latency})
    out, skipped = Path(args.out), []
    print_table_head(f"{device}: budgets from published models (zoo)")
    zoo_rows = []
    for name in BUDGET_MODELS:
        budget = predictor.spec_ms(published_form(name, scope), PRECISION)
        rival = best_published(baselines, budget)
        zoo_rows.append(compare(device, name, budget, rival, args.seeds, out))
        print_row(zoo_rows[-1], scope.mapping.raw_range)
    ofa_rows = []
    if device in OFA_DEVICES:
        print_table_head(f"{device}: budgets from Once-for-All's networks specialised for {device}")
        for net in ofa_networks(device):
            try:
                spec = parse_net_config(net["config"], resolution=net["image_size"], name=net["name"])
                budget = predictor.spec_ms(spec, PRECISION)
                rival = {
                    **{k: v for k, v in net.items() if k != "config"},
                    "name": f"OFA {device} {net['named_latency_ms']:g} ms",  # the full name is the row's label
                    "predicted_latency_ms": budget,
                    "caveat": ofa_caveat(net, scope),
                }
                ofa_rows.append(compare(device, net["name"], budget, rival, args.seeds, out))
            except (InputError, ValueError, KeyError) as exc:  # a network this benchmark cannot use
                skipped.append(f"{net['name']}: {exc}")
                print(f"{net['name']:<38} skipped: {exc}")
                continue
            print_row(ofa_rows[-1], scope.mapping.raw_range)
    return zoo_rows, ofa_rows, skipped


def main() -> None:
    args = parse_args()
    estimator, path = load_estimator(SearchSettings(target=DEVICES[0]))
    scope, mapping = estimator.scope, estimator.scope.mapping
    print(f"estimator {path} ({scope.describe()}); profiles bundled, {PRECISION}; seeds 0..{args.seeds - 1}")
    low, high = (100 * r for r in mapping.raw_range)
    print(HEADER.format(rmse=mapping.loo_rmse_points, seeds=f"0..{args.seeds - 1}", low=low, high=high))
    print(
        "caveat (Once-for-All rows): ftN = fine-tuned N epochs (the mapping is to 75-epoch fine-tuning); "
        "w1.0 = from the width-1.0 supernet, not the estimator's width-1.2 one; 'in mapping fit' = the "
        "mapping was fitted on this network's top-1; NNNpx = a resolution outside the searched "
        f"{scope.resolutions[0]}..{scope.resolutions[-1]} px"
    )
    results, summary = {}, []
    for device in args.devices.split(","):
        zoo_rows, ofa_rows, skipped = device_rows(device, args, scope)
        results[device] = {"zoo_budgets": zoo_rows, "ofa_budgets": ofa_rows, "skipped": skipped}
        line = f"{device}: gain over the best published model within the budget " + ", ".join(
            f"{r['budget_from']} {r['mean_gain_points']:+.1f}" for r in zoo_rows
        )
        line += f" (mean {np.mean([r['mean_gain_points'] for r in zoo_rows]):+.1f} points)"
        if ofa_rows:
            gains = [r["mean_gain_points"] for r in ofa_rows]
            line += f"; over Once-for-All's {len(ofa_rows)} networks mean {np.mean(gains):+.1f} points"
            line += f" ({min(gains):+.1f}..{max(gains):+.1f})"
        summary.append(line)
    print("\nsummary (gains in points of ImageNet top-1, mapped estimate minus published):")
    print("\n".join(summary))
    document = {
        "kind": "platform-nas/benchmark-search-vs-published",
        "estimator": str(path),
        "mapping": {
            "to": mapping.to,
            "leave_one_out_rmse_points": mapping.loo_rmse_points,
            "fitted_on": list(mapping.fitted_on),
            "raw_range": list(mapping.raw_range),
        },
        "precision": PRECISION,
        "seeds": args.seeds,
        "devices": results,
        "summary": summary,
    }
    write_atomic(Path(args.out) / "results.json", json.dumps(document, indent=2) + "\n")
    print(f"wrote {Path(args.out) / 'results.json'}")


if __name__ == "__main__":
    main()
