"""What a search writes for a person: the Pareto front as a plot (with the published models on
the same axes) and a short Markdown report. `python -m nas.search` decides; this only renders.

Where the estimator maps its raw score onto published ImageNet top-1 (the bundled ImageNet one),
the front and the choice are drawn at their mapped top-1 and each published model at (its
predicted latency, its published top-1): one scale. Otherwise (an estimator of a supernet's proxy
networks) the published models cannot be scored and sit on the latency axis as ticks.
"""

from __future__ import annotations

from pathlib import Path

from common.files import write_figure
from latency_models.footprint.costs import DEPLOYMENTS, deployment_name
from nas.search.budgets import COSTS, KB, shown
from nas.search.record import SearchRecord


def top1_text(record: SearchRecord) -> str:
    """The choice's accuracy as it may be quoted: the mapped ImageNet top-1 to a tenth of a point
    with its error (the mapping's leave-one-out RMSE), or marked extrapolated where the raw score
    lies outside those the mapping was fitted on; then the raw estimate it comes from."""
    raw = f"{100 * record.accuracy.estimated_top1:.2f}%"
    mapped = record.accuracy.mapped
    if mapped is None:
        return raw
    if mapped.extrapolated:
        return f"{100 * mapped.top1:.1f}%, extrapolated (raw {raw})"
    return f"{100 * mapped.top1:.1f}% ± {mapped.error_points:.1f} (raw {raw})"


def plot_front(path: Path, record: SearchRecord) -> None:
    # deferred: matplotlib takes about a second to import, and only this plot needs it
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mapped = record.accuracy.mapped
    chosen_top1 = mapped.top1 if mapped else record.accuracy.estimated_top1
    axis, deployment = record.axis, (record.target.precision, record.target.integer_io)
    scale = AXIS_SCALE.get(axis, 1.0)  # bytes drawn in KB, counts in millions
    latency = record.costs.by_name(*deployment)[axis] / scale
    budget = record.budgets.all.get(axis)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=120)
    xs = [p.cost(axis) / scale for p in record.front]
    ys = [100 * (p.mapped_top1 if mapped else p.estimated_top1) for p in record.front]
    front_label = (
        "Pareto front (searched; estimate mapped to fine-tuned top-1)" if mapped else "Pareto front (searched)"
    )
    ax.plot(xs, ys, "o-", color="tab:blue", markersize=4, label=front_label)
    chosen = "chosen"
    if mapped and not mapped.extrapolated:
        error = mapped.error_points
        ax.errorbar([latency], [100 * chosen_top1], yerr=[error], color="tab:red", capsize=4)
        chosen = f"chosen (± {error:.1f}: the mapping's leave-one-out error)"
    elif mapped:
        chosen = "chosen (mapping extrapolated)"
    ax.plot([latency], [100 * chosen_top1], "*", color="tab:red", markersize=14, label=chosen)
    if budget is not None:
        label = f"bound {shown(axis, budget)}"
        ax.axvline(budget / scale, color="gray", linestyle="--", linewidth=1, label=label)
        budget /= scale
    x_max = max(max(xs), budget or 0.0) * 1.6
    at = {b.name: b.by_name(*deployment).get(axis) for b in record.published}
    on_axis = [b for b in record.published if at[b.name] is not None and at[b.name] / scale <= x_max]
    if mapped:
        scored = [b for b in on_axis if b.published_top1 is not None]
        ax.plot(
            [at[b.name] / scale for b in scored],
            [100 * b.published_top1 for b in scored],
            "s",
            color="tab:green",
            markersize=4,
            label="published models (published top-1)",
        )
        for b in scored:
            ax.annotate(
                b.name, (at[b.name] / scale, 100 * b.published_top1), xytext=(3, -3),
                textcoords="offset points", fontsize=6, color="tab:green",
            )  # fmt: skip
        all_y = ys + [100 * b.published_top1 for b in scored]
        ax.set_ylim(min(all_y) - 1, max(all_y) + 1)
        ax.set_ylabel("ImageNet top-1 (%)")
    else:
        lo, hi = min(ys), max(ys)
        margin = max(0.5, (hi - lo) * 0.1)
        base_y = lo - 6 * margin  # the published models sit on a strip below the front
        ax.set_ylim(base_y - margin, hi + margin)
        for b in on_axis:
            ax.plot([at[b.name] / scale], [base_y], "|", color="tab:green", markersize=10)
            ax.annotate(
                b.name, (at[b.name] / scale, base_y), xytext=(0, 6), textcoords="offset points",
                rotation=90, fontsize=6, ha="center", va="bottom", color="tab:green",
            )  # fmt: skip
        ax.set_ylabel(f"estimated top-1 (%): {record.estimator.scores}", fontsize=7)
    ax.set_xlim(0, x_max)
    ax.set_xlabel(_axis_label(record))
    ax.set_title(f"{record.choice.spec.name}: search on {record.target.name}", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    write_figure(path, fig)
    plt.close(fig)


AXIS_SCALE = {"flash_bytes": KB, "arena_bytes": KB, "params": 1e6, "macs": 1e6}
AXIS_UNIT = {"latency_ms": "ms", "flash_bytes": "KB", "arena_bytes": "KB", "params": "M", "macs": "M"}


def _axis_label(record: SearchRecord) -> str:
    deployment = deployment_name(record.target.precision, record.target.integer_io)
    if record.axis == "latency_ms":
        return f"predicted latency on {record.target.name} ({deployment}, ms)"
    return f"{COSTS[record.axis].label} ({deployment}, {AXIS_UNIT[record.axis]})"


def markdown(record: SearchRecord) -> str:
    target, estimator = record.target, record.estimator
    accuracy, mapped, choice = record.accuracy, record.accuracy.mapped, record.choice
    deployment = deployment_name(target.precision, target.integer_io)
    lines = [
        f"# Search for {target.name} ({deployment})",
        "",
        f"Bounds: {_bounds_text(record)}. Space `{choice.space}`, {accuracy.form} "
        f"form at {choice.resolution}x{choice.resolution}, seed {record.seed}, "
        f"{record.effort.evaluated} candidates scored in {record.effort.seconds:.1f} s.",
        "",
        "## The choice",
        "",
        f"| predicted latency | {'ImageNet top-1 (mapped, raw)' if mapped else 'estimated top-1'} | MACs | params "
        "| spec hash |",
        "|---|---|---|---|---|",
        f"| {record.costs.latency_ms:.2f} ms | {top1_text(record)} "
        f"| {record.costs.macs / 1e6:.1f} M | {record.costs.params / 1e6:.2f} M | `{choice.spec_hash[:12]}` |",
        "",
        *_bounds_table(record),
        *_size_table(record),
    ]
    if accuracy.supernet_top1 is not None:
        lines += [f"Re-scored with the supernet: top-1 {100 * accuracy.supernet_top1:.2f}%.", ""]
    lines += [
        "Choices: " + ", ".join(f"{k}={v}" for k, v in choice.choices.items()),
        "",
        f"Latency: {target.description} ({target.source}).",
        "",
        f"Accuracy: the estimator `{estimator.name}` scores {estimator.scores}. The raw estimate is "
        f"{accuracy.estimated_top1_is}.",
    ]
    if mapped:
        m = mapped.mapping
        lines += [
            f"The mapped top-1 is the {mapped.top1_is}: raw x {m.slope:.3f} "
            f"{100 * m.intercept:+.2f} points, fitted on {m.networks} published networks "
            f"({m.source}); leave-one-out error {m.leave_one_out_rmse_points:.2f} points RMSE, "
            f"{m.leave_one_out_max_points:.2f} at most; fitted over raw scores "
            f"{100 * m.raw_range[0]:.1f}-{100 * m.raw_range[1]:.1f}%"
            + (
                f" (this choice's {100 * accuracy.estimated_top1:.1f}% lies outside it: its mapped top-1 is an "
                "extrapolation, with no measured error)."
                if mapped.extrapolated
                else "."
            ),
        ]
    lines += ["", estimator.summary, ""]
    if record.comparison:
        lines += _comparison_lines(record)
    label = "ImageNet top-1 (mapped)" if mapped else "estimated top-1"
    sized = record.axis in ("flash_bytes", "arena_bytes")
    lines += [
        f"## Pareto front ({label} against {COSTS[record.axis].label}, {deployment})",
        "",
        f"| predicted latency (ms) | {label} | MACs (M) | params (M) |" + (" flash | peak SRAM |" if sized else ""),
        "|---|---|---|---|" + ("---|---|" if sized else ""),
    ]
    digits = 1 if mapped else 2
    lines += [
        f"| {p.latency_ms:.2f} | {100 * (p.mapped_top1 if mapped else p.estimated_top1):.{digits}f}% "
        f"| {p.macs / 1e6:.1f} | {p.params / 1e6:.2f} |"
        + (f" {shown('flash_bytes', p.flash_bytes)} | {shown('arena_bytes', p.arena_bytes)} |" if sized else "")
        for p in record.front
    ]
    lines += ["", "## Published models priced alike", ""]
    if mapped:
        lines += ["Predicted by the same latency predictor; top-1 as published (source in the zoo).", ""]
    else:
        lines += [
            "Predicted by the same latency predictor, in the same form as the searched networks. The",
            "estimator cannot score them (they lie outside the space): compare by training them alike.",
            "",
        ]
    lines += [
        "Flash (the .tflite) in fp32 and int8, and peak SRAM (TFLM's activation arena) in int8, counted as the "
        f"choice's are. Within bounds: every bound of this search ({deployment}).",
        "",
        "| model | resolution | predicted latency (ms) | within bounds | published top-1 | MACs (M) | params (M) "
        "| flash fp32 | flash int8 | SRAM int8 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    bounds = record.budgets.all
    for b in sorted(record.published, key=lambda b: b.latency_ms):
        costs = b.by_name(target.precision, target.integer_io)
        inside = "yes" if all(costs.get(name, float("inf")) <= limit for name, limit in bounds.items()) else "no"
        published = f"{100 * b.published_top1:.1f}%" if b.published_top1 is not None else "-"
        fp32, int8 = b.of("fp32"), b.of("int8")
        sizes = (
            f"{shown('flash_bytes', fp32.flash_bytes)} | {shown('flash_bytes', int8.flash_bytes)} "
            f"| {shown('arena_bytes', int8.arena_bytes)}"
            if fp32 and int8
            else "- | - | -"
        )
        lines.append(
            f"| {b.name} | {b.resolution} | {b.latency_ms:.2f} | {inside} | {published} "
            f"| {b.macs / 1e6:.1f} | {b.params / 1e6:.2f} | {sizes} |"
        )
    return "\n".join(lines) + "\n"


def _bounds_text(record: SearchRecord) -> str:
    """Each bound with where it comes from, and which one the choice comes closest to."""
    budgets = record.budgets
    parts = []
    if budgets.latency:
        parts.append(f"predicted latency ≤ **{budgets.latency.ms:.2f} ms** ({budgets.latency.source})")
    parts += [f"{COSTS[name].label} ≤ **{shown(name, limit)}**" for name, limit in budgets.sizes.items()]
    text = "; ".join(parts)
    if budgets.binding and len(budgets.all) > 1:
        text += f"; the one that binds: {COSTS[budgets.binding].label}"
    return text


def _bounds_table(record: SearchRecord) -> list[str]:
    """Every cost of the choice that a bound can name, against its bound where it has one."""
    deployment = (record.target.precision, record.target.integer_io)
    costs, bounds = record.costs.by_name(*deployment), record.budgets.all
    rows = ["| cost | the choice | bound | share of the bound |", "|---|---|---|---|"]
    for name in COSTS:
        if name not in costs:
            continue
        limit = bounds.get(name)
        share = f"{costs[name] / limit:.1%}" + (" (binds)" if name == record.budgets.binding else "") if limit else "-"
        rows.append(f"| {COSTS[name].label} | {shown(name, costs[name])} | {shown(name, limit) if limit else '-'} "
                    f"| {share} |")  # fmt: skip
    return [*rows, ""]


def _size_table(record: SearchRecord) -> list[str]:
    """The choice's footprint in every deployment (none in a record from before it was priced)."""
    if not record.costs.footprints:
        return []
    rows = [
        "| deployment | flash (.tflite) | peak SRAM (TFLM activation arena) | MCUNet's peak activation |",
        "|---|---|---|---|",
    ]
    for precision, integer_io in DEPLOYMENTS:
        f = record.costs.of(precision, integer_io)
        rows.append(
            f"| {f.deployment} | {shown('flash_bytes', f.flash_bytes)} | {shown('arena_bytes', f.arena_bytes)} "
            f"| {shown('arena_bytes', f.mcunet_peak_bytes)} |"
        )
    note = (
        "Predicted from the spec: the flash is the file nas.export writes, the arena the head TFLM's planner "
        "allocates (its persistent part, op data such as per-channel quantisation, comes on top; nas.export "
        "measures it); both checked exact or within 1% by benchmarks/memory_fidelity.py."
    )
    return [*rows, "", note, ""]


def _comparison_lines(record: SearchRecord) -> list[str]:
    comparison = record.comparison
    if not comparison.near_budget:
        return [
            f"No published model with a published top-1 is predicted within ±{comparison.window:.0%} of the "
            "budget on this device.",
            "",
        ]
    lines = [
        f"## Against published models near the budget (predicted latency within ±{comparison.window:.0%})",
        "",
        "| model | predicted latency (ms) | published ImageNet top-1 | source |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {b.name} | {b.latency_ms:.2f} | {100 * b.published_top1:.1f}% | {b.top1_source} |"
        for b in comparison.near_budget
    ]
    best = comparison.best_at_or_under
    lines.append("")
    if best:
        lines.append(
            f"Best published model at or under the choice's {record.costs.latency_ms:.2f} ms: {best.name} "
            f"({100 * best.published_top1:.1f}%). The choice's mapped top-1 is "
            f"**{comparison.gain_points:+.1f} points** against it"
            + (
                " (the mapped top-1 extrapolated: no measured error)."
                if record.accuracy.mapped.extrapolated
                else f" (± {comparison.error_points:.1f}, the mapping's error)."
            )
        )
    else:
        lines.append("No published model near the budget is as fast as the choice.")
    return [*lines, ""]
