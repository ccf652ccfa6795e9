"""What a search writes for a person: the Pareto front as a plot (with the published models on
the same latency axis) and a short Markdown report. `python -m nas.search` decides; this only renders."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from common.files import write_atomic


def plot_front(path: Path, result: dict[str, Any], front: list[dict], baselines: list[dict]) -> None:
    """Estimated top-1 against predicted latency: the front, the choice, the budget, and every
    published model placed on the latency axis (the estimator cannot score them: they lie
    outside the space, so they get a tick, not a point)."""
    # deferred: matplotlib takes about a second to import, and only this plot needs it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    budget = result["budget_ms"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    xs = [p["predicted_latency_ms"] for p in front]
    ys = [100 * p["estimated_top1"] for p in front]
    ax.plot(xs, ys, "o-", color="tab:blue", markersize=4, label="Pareto front (searched)")
    ax.plot(
        [result["predicted_latency_ms"]],
        [100 * result["estimated_top1"]],
        "*",
        color="tab:red",
        markersize=14,
        label="chosen",
    )
    ax.axvline(budget, color="gray", linestyle="--", linewidth=1, label=f"budget {budget:.1f} ms")
    lo, hi = min(ys), max(ys)
    margin = max(0.5, (hi - lo) * 0.1)
    base_y = lo - 6 * margin  # the published models sit on a strip below the front
    ax.set_ylim(base_y - margin, hi + margin)
    x_max = max(max(xs), budget) * 1.6
    for b in baselines:
        if b["predicted_latency_ms"] <= x_max:
            ax.plot([b["predicted_latency_ms"]], [base_y], "|", color="tab:green", markersize=10)
            ax.annotate(
                b["name"],
                (b["predicted_latency_ms"], base_y),
                xytext=(0, 6),
                textcoords="offset points",
                rotation=90,
                fontsize=6,
                ha="center",
                va="bottom",
                color="tab:green",
            )
    ax.set_xlim(0, x_max)
    ax.set_xlabel(f"predicted latency on {result['target']['name']} ({result['target']['precision']}, ms)")
    ax.set_ylabel(f"estimated top-1 (%), {result['estimator']['data']}")
    ax.set_title(f"{result['spec']['name']}: search on {result['target']['name']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize=8)
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    write_atomic(path, buffer.getvalue())


def markdown(result: dict[str, Any], front: list[dict], baselines: list[dict]) -> str:
    target, budget = result["target"], result["budget_ms"]
    lines = [
        f"# Search for {target['name']} ({target['precision']})",
        "",
        f"Budget: **{budget:.2f} ms** ({result['budget_source']}). Deployed at "
        f"{result['resolution']}x{result['resolution']}, space `{result['space']}`, seed {result['seed']}, "
        f"{result['search']['evaluated']} candidates scored in {result['search']['seconds']:.1f} s.",
        "",
        "## The choice",
        "",
        "| predicted latency | estimated top-1 | MACs | params | spec hash |",
        "|---|---|---|---|---|",
        f"| {result['predicted_latency_ms']:.2f} ms | {100 * result['estimated_top1']:.2f}% "
        f"| {result['macs'] / 1e6:.1f} M | {result['params'] / 1e6:.2f} M | `{result['spec_hash'][:12]}` |",
        "",
    ]
    if "supernet_top1" in result:
        lines += [f"Re-scored with the supernet: top-1 {100 * result['supernet_top1']:.2f}%.", ""]
    lines += [
        "Choices: " + ", ".join(f"{k}={v}" for k, v in result["choices"].items()),
        "",
        f"Latency: {target['description']} ({target['source']}).",
        f"Accuracy: {result['estimator']['summary']}",
        "",
        "## Pareto front (estimated top-1 against predicted latency)",
        "",
        "| predicted latency (ms) | estimated top-1 | MACs (M) | params (M) |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {p['predicted_latency_ms']:.2f} | {100 * p['estimated_top1']:.2f}% | {p['macs'] / 1e6:.1f} "
        f"| {p['params'] / 1e6:.2f} |"
        for p in front
    ]
    lines += [
        "",
        "## Published models on the same latency axis",
        "",
        "Predicted by the same latency predictor. They lie outside the search space, so the accuracy",
        "estimator cannot score them: their accuracies can only be compared by training them alike.",
        "",
        "| model | predicted latency (ms) | within budget | MACs (M) | params (M) |",
        "|---|---|---|---|---|",
    ]
    for b in sorted(baselines, key=lambda b: b["predicted_latency_ms"]):
        inside = "yes" if b["predicted_latency_ms"] <= budget else "no"
        lines.append(
            f"| {b['name']} | {b['predicted_latency_ms']:.2f} | {inside} | {b['macs'] / 1e6:.1f} "
            f"| {b['params'] / 1e6:.2f} |"
        )
    return "\n".join(lines) + "\n"
