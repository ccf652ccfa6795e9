"""A prepared device search run to its end, and what it found made into a `SearchRecord`: the
choice (the finalists re-scored on a supernet where one is given), the front, the published models
priced alike and compared, written as arch.json, pareto.json, pareto.png and report.md.

Two searches run side by side from the same seed: aging evolution for the most accurate network
within the budget, and NSGA-II for the front of accuracy against latency under the same budget.
The budget is a filter around both, not code inside them. After every generation the state is
saved, so a killed search continues and ends where an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from common.files import write_atomic
from common.values import all_finite
from latency_models.footprint.costs import Footprint, footprints
from nas.accuracy.estimator import DEFAULT_ESTIMATOR, AccuracyPredictor
from nas.accuracy.scope import Scope
from nas.options import DEFAULT_CALIB_IMAGES
from nas.search.budgets import COSTS, binding, shown
from nas.search.evolution import pareto_front
from nas.search.preparation import STATE, DeviceSearch, hold_output, prepare_searches, published_form
from nas.search.record import (
    Accuracy,
    Budgets,
    Candidate,
    Choice,
    Costs,
    Effort,
    Estimator,
    LatencyBudget,
    MappedTop1,
    MappingSummary,
    PublishedComparison,
    PublishedModel,
    SearchRecord,
    Target,
)
from nas.search.report import markdown, plot_front
from nas.search.settings import SearchError, SearchSettings
from nas.training.evaluation import open_evaluator
from nas.training.run import Run
from search_spaces import zoo
from search_spaces.arch_spec import ArchSpec
from search_spaces.graph import count_macs, count_params
from search_spaces.space import Choices

NEAR_BUDGET = 0.15  # published models within this fraction of the budget are compared with the choice
RESCORE = 16  # finalists re-scored with the supernet: the best by estimate (about 3 s each on one core)


def run_search(
    search: DeviceSearch, spent: float, out: Path, on_generation: Callable[[DeviceSearch], None] = lambda s: None
) -> SearchRecord:
    """Runs the remaining generations, saving the state in `out` after each (and calling
    `on_generation`), writes the record into `out` (`write_record`) and returns it; the lock
    `prepare` took on `out` is released at the end, whatever happens."""
    try:
        if search.lock is None:  # a search not from `prepare`: lock its folder here
            search.lock = hold_output(out)
        began = time.perf_counter()
        out.mkdir(parents=True, exist_ok=True)
        while search.evolution.generation < search.settings.generations:
            search.evolution.step()
            search.pareto.step()
            write_atomic(out / STATE, json.dumps(search.state(spent + time.perf_counter() - began)))
            on_generation(search)
        if not search.evolution.members:
            raise SearchError(
                f"no architecture of {search.settings.space} found within {_bounds_text(search)} on {search.target}"
            )
        record = finish(search, round(spent + time.perf_counter() - began, 2))
        write_record(record, out)
        return record
    finally:
        search.release()


def search_device(
    settings: SearchSettings, out: Path, on_generation: Callable[[DeviceSearch], None] = lambda s: None
) -> SearchRecord:
    """One device's whole search in one call, its state in `out`, and its record written there
    (arch.json, pareto.json, pareto.png and report.md) before it is returned."""
    [(search, spent)] = prepare_searches([settings], [out])
    return run_search(search, spent, out, on_generation)


def budget_search(target: str, budget_ms: float, seed: int, out: Path) -> SearchRecord:
    """The record of one search for `target` at `budget_ms` with `seed` (the defaults otherwise)
    in `out`: read back from its arch.json when finished before, else run (continuing a killed
    one). A folder that holds another budget's or seed's search is refused, naming it."""
    arch_path = out / "arch.json"
    if not arch_path.exists():
        search_device(SearchSettings(target=target, latency_ms=budget_ms, seed=seed, resume=True), out)
    record = SearchRecord.load(arch_path)
    found = record.budgets.latency.ms if record.budgets.latency else None
    if found is None or not np.isclose(found, budget_ms, rtol=1e-9) or record.seed != seed:
        raise SearchError(f"{arch_path}: a search for {found} ms, seed {record.seed}; remove {out}")
    return record


def write_record(record: SearchRecord, out: Path) -> None:
    """arch.json, pareto.json, the plot of the front (pareto.png) and report.md into `out`."""
    out.mkdir(parents=True, exist_ok=True)
    write_atomic(out / "arch.json", json.dumps(record.to_dict(), indent=2) + "\n")
    write_atomic(out / "pareto.json", json.dumps(record.pareto_dict(), indent=2) + "\n")
    plot_front(out / "pareto.png", record)
    write_atomic(out / "report.md", markdown(record))


def finish(search: DeviceSearch, seconds: float) -> SearchRecord:
    """The record of a search that has run its generations: every distinct candidate priced and
    scored (checked finite before anything is written), the most accurate one chosen (by the
    supernet's top-1 among the RESCORE best estimated, where a supernet is given)."""
    settings = search.settings
    described = describe(search, candidates(search))
    for _, d in described:
        if not all_finite([d.estimated_top1, d.latency_ms]):
            # checked before anything is written: a result of NaN is no result
            raise SearchError(
                f"{search.target}: a candidate scored {d.estimated_top1} at {d.latency_ms} ms; "
                f"the estimator ({settings.estimator or 'default'}) or the {search.target} profile is not usable"
            )
    # the most accurate candidates within every bound by the exact count (the batch metrics screened)
    ranked = sorted(range(len(described)), key=lambda i: -described[i][1].estimated_top1)
    wanted = RESCORE if settings.supernet else 1
    finalists = list(itertools.islice((i for i in ranked if search.fits(described[i][0])), wanted))
    if not finalists:
        raise SearchError(f"{search.target}: no candidate is within {_bounds_text(search)} by the exact count")
    best_choices, best = described[finalists[0]]
    if settings.supernet:
        for i, top1 in zip(
            finalists, rescore([described[i][0] for i in finalists], settings.supernet, search.estimator)
        ):
            described[i] = (described[i][0], dataclasses.replace(described[i][1], supernet_top1=top1))
        best_choices, best = max(
            (described[i] for i in finalists), key=lambda item: (item[1].supernet_top1, item[1].estimated_top1)
        )
    spec = search.space.materialize(best_choices)
    spec = dataclasses.replace(spec, name=f"{settings.space}-{search.target}-{_bound_label(search)}")
    info = search.predictor.metadata
    scope = search.scope
    mapped = None
    if scope.mapping is not None:
        mapped = MappedTop1(
            best.mapped_top1,
            # beyond the raw scores the mapping was fitted on, its measured error does not apply
            not scope.mapping.covers(best.estimated_top1),
            scope.mapping.to,
            _mapping_summary(scope),
        )
    costs = Costs(best.latency_ms, best.macs, best.params, tuple(footprints(spec)))
    published = published_models(search)
    comparison = None
    if mapped and search.budget is not None:
        comparison = compare_published(published, search.budget, costs.latency_ms, mapped)
    latency_budget = LatencyBudget(search.budget, search.budget_source) if search.budget is not None else None
    binds = binding(costs.by_name(settings.precision, settings.integer_io), search.budgets)
    return SearchRecord(
        choice=Choice(spec, spec.content_hash(), settings.space, best.choices),
        costs=costs,
        budgets=Budgets(latency_budget, dict(search.size_budgets), binds),
        accuracy=Accuracy(scope.form, best.estimated_top1, scope.metric, mapped, best.supernet_top1),
        seed=settings.seed,
        target=Target(
            name=search.target,
            precision=settings.precision,
            description=info.get("description", search.target),
            source=info.get("source", ""),
            predictor_fitted=info.get("fitted", ""),
            predictor_sha256=search.predictor_sha256,
            integer_io=settings.integer_io,
        ),
        estimator=Estimator(
            name=settings.estimator or DEFAULT_ESTIMATOR,
            file=str(search.estimator_path),
            sha256=search.estimator_sha256,
            scores=scope.describe(),
            summary=_estimator_summary(search.estimator.info, scope),
        ),
        effort=Effort(settings.population, search.evolution.generation, len(described), seconds),
        comparison=comparison,
        front=front(search, described),
        published=tuple(published),
        axis=search.axis,
    )


def _bound_label(search: DeviceSearch) -> str:
    """The bound in the chosen network's name: the latency budget, else the size bounds."""
    if search.budget is not None:
        return f"{search.budget:.1f}ms"
    return "-".join(
        f"{name.split('_')[0]}{shown(name, limit).replace(' ', '')}" for name, limit in search.size_budgets.items()
    )


def _bounds_text(search: DeviceSearch) -> str:
    return ", ".join(f"{COSTS[name].label} {shown(name, limit)}" for name, limit in search.budgets.items())


def candidates(search: DeviceSearch) -> list[Choices]:
    """Every distinct feasible candidate the two searches hold: evolution's whole history and
    NSGA-II's final population."""
    return list(dict.fromkeys([c for c, _ in search.evolution.history] + search.pareto.members))


def describe(search: DeviceSearch, choices: list[Choices]) -> list[tuple[Choices, Candidate]]:
    """Each candidate (as option indices) with its prices and scores."""
    batch = np.array(choices)
    latency, top1 = search.latency(batch), search.accuracy(batch)
    macs, params = search.macs(batch), search.params(batch)
    mapping = search.scope.mapping
    return [
        (
            c,
            Candidate(
                choices=search.space.values(c),
                latency_ms=float(latency[i]),
                estimated_top1=float(top1[i]),
                mapped_top1=float(mapping(top1[i])) if mapping else None,
                macs=int(round(macs[i])),
                params=int(round(params[i])),
            ),
        )
        for i, c in enumerate(choices)
    ]


def front(search: DeviceSearch, described: list[tuple[Choices, Candidate]]) -> tuple[Candidate, ...]:
    """The candidates no other beats on both estimated top-1 and the front's cost (the search's
    axis), cheapest first. Where flash or the arena is bounded, the members carry their exact
    counts: the front is found by the batch metrics, members beyond a bound by the exact count
    leave it (and it is found again without them), and the rest are ranked by the exact counts."""
    axis = search.axis
    if axis in ("flash_bytes", "arena_bytes"):
        batch = search.metrics[axis](np.array([c for c, _ in described]))
        cost = {c: float(v) for (c, _), v in zip(described, batch)}
    else:
        cost = {c: d.cost(axis) for c, d in described}
    pool = list(described)
    while True:
        members = [pool[i] for i in pareto_front(np.array([[d.estimated_top1, -cost[c]] for c, d in pool]))]
        beyond = {c for c, _ in members if not search.fits(c)}  # exact counts: only the members are counted
        if not beyond:
            break
        pool = [(c, d) for c, d in pool if c not in beyond]
    if {"flash_bytes", "arena_bytes"} & set(search.size_budgets):
        exact = {c: search.footprint(c) for c, _ in members}
        members = [
            (c, dataclasses.replace(d, flash_bytes=exact[c].flash_bytes, arena_bytes=exact[c].arena_bytes))
            for c, d in members
        ]
        points = np.array([[d.estimated_top1, -d.cost(axis)] for _, d in members])
        members = [members[i] for i in pareto_front(points)]
    return tuple(sorted((d for _, d in members), key=lambda d: d.cost(axis)))


def published_models(search: DeviceSearch) -> list[PublishedModel]:
    """Every published model priced on the device in the searched networks' form, with its
    published ImageNet top-1 where that is what the estimator is about."""
    scope = search.scope
    imagenet = scope.form == "deployed" and scope.classes == 1000 and scope.data.startswith("ImageNet")
    out = []
    for name in zoo.names():
        spec = published_form(name, scope)
        published = zoo.published_top1(name) if imagenet else None
        out.append(
            PublishedModel(
                name=name,
                resolution=spec.resolution,
                latency_ms=search.predictor.spec_ms(spec, search.settings.precision),
                macs=count_macs(spec),
                params=count_params(spec),
                published_top1=published[0] / 100 if published else None,
                top1_source=published[1] if published else None,
                footprints=published_footprints(spec, (search.settings.precision, search.settings.integer_io)),
            )
        )
    return out


_PUBLISHED_FOOTPRINTS: dict[tuple[str, tuple[str, bool]], tuple[Footprint, ...]] = {}


def published_footprints(spec: ArchSpec, searched: tuple[str, bool]) -> tuple[Footprint, ...]:
    """A published model's footprint in the deployments the report shows (fp32, int8) and the
    one searched; the same for every device searched (about 0.1 s a model), so priced once per
    process."""
    key = (spec.content_hash(), searched)
    if key not in _PUBLISHED_FOOTPRINTS:
        shown = tuple(dict.fromkeys([("fp32", False), ("int8", False), searched]))
        _PUBLISHED_FOOTPRINTS[key] = tuple(footprints(spec, shown))
    return _PUBLISHED_FOOTPRINTS[key]


def rescore(choices: list[Choices], supernet: str, estimator: AccuracyPredictor) -> list[float]:
    """Each candidate's top-1 on the trained supernet, measured as the estimator's training data
    was (same validation and recalibration images; an estimator that does not say how many images
    recalibrated batch norm gets the one default, as nas.fit_accuracy's --calib-images)."""
    samples = estimator.info.get("samples", {})
    run_folder = Run.open(supernet)
    trained, evaluator, _ = open_evaluator(run_folder, samples.get("calib_images", DEFAULT_CALIB_IMAGES))
    top1 = [evaluator.top1(trained.params, trained.layout.subnet(c), samples.get("val_images", 2000)) for c in choices]
    run_folder.close()
    return top1


def compare_published(
    published: list[PublishedModel], budget: float, latency: float, mapped: MappedTop1
) -> PublishedComparison:
    """The published models whose predicted latency lies within NEAR_BUDGET of the budget, and
    the choice's mapped top-1 against the best of them at or under its own latency."""
    near = sorted(
        (b for b in published if b.published_top1 is not None and abs(b.latency_ms - budget) <= NEAR_BUDGET * budget),
        key=lambda b: b.latency_ms,
    )
    under = [b for b in near if b.latency_ms <= latency]
    best = max(under, key=lambda b: b.published_top1) if under else None
    return PublishedComparison(
        window=NEAR_BUDGET,
        near_budget=tuple(near),
        best_at_or_under=best,
        gain_points=100 * (mapped.top1 - best.published_top1) if best else None,
        error_points=mapped.error_points,
    )


def _mapping_summary(scope: Scope) -> MappingSummary:
    m = scope.mapping
    return MappingSummary(
        slope=m.slope,
        intercept=m.intercept,
        leave_one_out_rmse_points=m.loo_rmse_points,
        leave_one_out_max_points=m.loo_max_points,
        networks=len(m.fitted_on),
        raw_range=tuple(m.raw_range),
        source=m.source,
    )


def _estimator_summary(info: dict[str, Any], scope: Scope) -> str:
    if scope.form == "deployed":
        return f"{scope.metric}; {info.get('source', '')}."
    held = info.get("held_out", {})
    samples = info.get("samples", {})
    data = info.get("supernet", {}).get("data", {}).get("name", "?")
    rmse, tau = held.get("rmse_points", float("nan")), held.get("kendall_tau", float("nan"))
    return (
        f"MLP fitted on {info.get('fit', {}).get('subnets', '?')} subnets of a supernet trained on {data} "
        f"(top-1 on the first {samples.get('val_images', '?')} test images); held-out RMSE {rmse:.2f} points, "
        f"Kendall tau {tau:.3f} "
        f"({info.get('made_by', '')}, {info.get('date', '')})."
    )
