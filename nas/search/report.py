"""What a search writes for a person: the Pareto front as a plot (with the published models on
the same axes) and a short Markdown report. `python -m nas.search` decides; this only renders.

Where the estimator maps its raw score onto published ImageNet top-1 (the bundled ImageNet one),
the front and the choice are drawn at their mapped top-1 and each published model at (its
predicted latency, its published top-1): one scale. Otherwise (an estimator of a supernet's proxy
networks) the published models cannot be scored and sit on the latency axis as ticks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from common.files import write_figure


def top1_text(result: dict[str, Any]) -> str:
    """The choice's accuracy as it may be quoted: the mapped ImageNet top-1 to a tenth of a point
    with its error (the mapping's leave-one-out RMSE), or marked extrapolated where the raw score
    lies outside those the mapping was fitted on; then the raw estimate it comes from."""
    raw = f"{100 * result['estimated_top1']:.2f}%"
    if "mapped_top1" not in result:
        return raw
    if result["mapped_top1_extrapolated"]:
        return f"{100 * result['mapped_top1']:.1f}%, extrapolated (raw {raw})"
    error = result["estimator"]["mapping"]["leave_one_out_rmse_points"]
    return f"{100 * result['mapped_top1']:.1f}% ± {error:.1f} (raw {raw})"


def plot_front(path: Path, result: dict[str, Any], front: list[dict], baselines: list[dict]) -> None:
    # deferred: matplotlib takes about a second to import, and only this plot needs it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mapped = "mapped_top1" in result
    key = "mapped_top1" if mapped else "estimated_top1"
    budget = result["budget_ms"]
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    xs = [p["predicted_latency_ms"] for p in front]
    ys = [100 * p[key] for p in front]
    front_label = (
        "Pareto front (searched; estimate mapped to fine-tuned top-1)" if mapped else "Pareto front (searched)"
    )
    ax.plot(xs, ys, "o-", color="tab:blue", markersize=4, label=front_label)
    chosen = "chosen"
    if mapped and not result["mapped_top1_extrapolated"]:
        error = result["estimator"]["mapping"]["leave_one_out_rmse_points"]
        ax.errorbar([result["predicted_latency_ms"]], [100 * result[key]], yerr=[error], color="tab:red", capsize=4)
        chosen = f"chosen (± {error:.1f}: the mapping's leave-one-out error)"
    elif mapped:
        chosen = "chosen (mapping extrapolated)"
    ax.plot([result["predicted_latency_ms"]], [100 * result[key]], "*", color="tab:red", markersize=14, label=chosen)
    ax.axvline(budget, color="gray", linestyle="--", linewidth=1, label=f"budget {budget:.1f} ms")
    x_max = max(max(xs), budget) * 1.6
    shown = [b for b in baselines if b["predicted_latency_ms"] <= x_max]
    if mapped:
        scored = [b for b in shown if "published_top1" in b]
        ax.plot(
            [b["predicted_latency_ms"] for b in scored],
            [100 * b["published_top1"] for b in scored],
            "s",
            color="tab:green",
            markersize=4,
            label="published models (published top-1)",
        )
        for b in scored:
            ax.annotate(
                b["name"], (b["predicted_latency_ms"], 100 * b["published_top1"]), xytext=(3, -3),
                textcoords="offset points", fontsize=6, color="tab:green",
            )  # fmt: skip
        all_y = ys + [100 * b["published_top1"] for b in scored]
        ax.set_ylim(min(all_y) - 1, max(all_y) + 1)
        ax.set_ylabel("ImageNet top-1 (%)")
    else:
        lo, hi = min(ys), max(ys)
        margin = max(0.5, (hi - lo) * 0.1)
        base_y = lo - 6 * margin  # the published models sit on a strip below the front
        ax.set_ylim(base_y - margin, hi + margin)
        for b in shown:
            ax.plot([b["predicted_latency_ms"]], [base_y], "|", color="tab:green", markersize=10)
            ax.annotate(
                b["name"], (b["predicted_latency_ms"], base_y), xytext=(0, 6), textcoords="offset points",
                rotation=90, fontsize=6, ha="center", va="bottom", color="tab:green",
            )  # fmt: skip
        ax.set_ylabel(f"estimated top-1 (%): {result['estimator']['scores']}", fontsize=7)
    ax.set_xlim(0, x_max)
    ax.set_xlabel(f"predicted latency on {result['target']['name']} ({result['target']['precision']}, ms)")
    ax.set_title(f"{result['spec']['name']}: search on {result['target']['name']}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    write_figure(path, fig)
    plt.close(fig)


def markdown(result: dict[str, Any], front: list[dict], baselines: list[dict]) -> str:
    target, budget, estimator = result["target"], result["budget_ms"], result["estimator"]
    mapped = "mapped_top1" in result
    lines = [
        f"# Search for {target['name']} ({target['precision']})",
        "",
        f"Budget: **{budget:.2f} ms** ({result['budget_source']}). Space `{result['space']}`, {result['form']} "
        f"form at {result['resolution']}x{result['resolution']}, seed {result['seed']}, "
        f"{result['search']['evaluated']} candidates scored in {result['search']['seconds']:.1f} s.",
        "",
        "## The choice",
        "",
        f"| predicted latency | {'ImageNet top-1 (mapped, raw)' if mapped else 'estimated top-1'} | MACs | params "
        "| spec hash |",
        "|---|---|---|---|---|",
        f"| {result['predicted_latency_ms']:.2f} ms | {top1_text(result)} "
        f"| {result['macs'] / 1e6:.1f} M | {result['params'] / 1e6:.2f} M | `{result['spec_hash'][:12]}` |",
        "",
    ]
    if "supernet_top1" in result:
        lines += [f"Re-scored with the supernet: top-1 {100 * result['supernet_top1']:.2f}%.", ""]
    lines += [
        "Choices: " + ", ".join(f"{k}={v}" for k, v in result["choices"].items()),
        "",
        f"Latency: {target['description']} ({target['source']}).",
        "",
        f"Accuracy: the estimator `{estimator['name']}` scores {estimator['scores']}. The raw estimate is "
        f"{estimator['estimated_top1_is']}.",
    ]
    if mapped:
        m = estimator["mapping"]
        lines += [
            f"The mapped top-1 is the {estimator['mapped_top1_is']}: raw x {m['slope']:.3f} "
            f"{100 * m['intercept']:+.2f} points, fitted on {m['networks']} published networks "
            f"({m['source']}); leave-one-out error {m['leave_one_out_rmse_points']:.2f} points RMSE, "
            f"{m['leave_one_out_max_points']:.2f} at most; fitted over raw scores "
            f"{100 * m['raw_range'][0]:.1f}-{100 * m['raw_range'][1]:.1f}%"
            + (
                f" (this choice's {100 * result['estimated_top1']:.1f}% lies outside it: its mapped top-1 is an "
                "extrapolation, with no measured error)."
                if result["mapped_top1_extrapolated"]
                else "."
            ),
        ]
    lines += ["", estimator["summary"], ""]
    comparison = result.get("published_comparison")
    if comparison:
        lines += _comparison_lines(result, comparison)
    key, label = ("mapped_top1", "ImageNet top-1 (mapped)") if mapped else ("estimated_top1", "estimated top-1")
    lines += [
        f"## Pareto front ({label} against predicted latency)",
        "",
        f"| predicted latency (ms) | {label} | MACs (M) | params (M) |",
        "|---|---|---|---|",
    ]
    digits = 1 if mapped else 2
    lines += [
        f"| {p['predicted_latency_ms']:.2f} | {100 * p[key]:.{digits}f}% | {p['macs'] / 1e6:.1f} "
        f"| {p['params'] / 1e6:.2f} |"
        for p in front
    ]
    lines += ["", "## Published models on the same latency axis", ""]
    if mapped:
        lines += ["Predicted by the same latency predictor; top-1 as published (source in the zoo).", ""]
    else:
        lines += [
            "Predicted by the same latency predictor, in the same form as the searched networks. The",
            "estimator cannot score them (they lie outside the space): compare by training them alike.",
            "",
        ]
    lines += [
        "| model | resolution | predicted latency (ms) | within budget | published top-1 | MACs (M) | params (M) |",
        "|---|---|---|---|---|---|---|",
    ]
    for b in sorted(baselines, key=lambda b: b["predicted_latency_ms"]):
        inside = "yes" if b["predicted_latency_ms"] <= budget else "no"
        published = f"{100 * b['published_top1']:.1f}%" if "published_top1" in b else "-"
        lines.append(
            f"| {b['name']} | {b['resolution']} | {b['predicted_latency_ms']:.2f} | {inside} | {published} "
            f"| {b['macs'] / 1e6:.1f} | {b['params'] / 1e6:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _comparison_lines(result: dict[str, Any], comparison: dict[str, Any]) -> list[str]:
    if not comparison["near_budget"]:
        return [
            f"No published model with a published top-1 is predicted within ±{comparison['window']:.0%} of the "
            "budget on this device.",
            "",
        ]
    lines = [
        f"## Against published models near the budget (predicted latency within ±{comparison['window']:.0%})",
        "",
        "| model | predicted latency (ms) | published ImageNet top-1 | source |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {b['name']} | {b['predicted_latency_ms']:.2f} | {100 * b['published_top1']:.1f}% | {b['top1_source']} |"
        for b in comparison["near_budget"]
    ]
    best = comparison.get("best_at_or_under")
    lines.append("")
    if best:
        lines.append(
            f"Best published model at or under the choice's {result['predicted_latency_ms']:.2f} ms: {best['name']} "
            f"({100 * best['published_top1']:.1f}%). The choice's mapped top-1 is "
            f"**{comparison['gain_points']:+.1f} points** against it"
            + (
                " (the mapped top-1 extrapolated: no measured error)."
                if result["mapped_top1_extrapolated"]
                else f" (± {comparison['error_points']:.1f}, the mapping's error)."
            )
        )
    else:
        lines.append("No published model near the budget is as fast as the choice.")
    return [*lines, ""]
