"""One device's latency-constrained search, as a library: `SearchSettings` in, `search_device`
(or, for several devices checked before any runs, `prepare_searches` then `run_search` each) out
to a `SearchResult`, written (arch.json, pareto.json, pareto.png and report.md) into the output
folder. That folder is locked (`common.locks`, OUT.lock beside it) from `prepare` until the result
is written: a second search into it is refused (SearchError naming the holder), and the check that
it "already holds a search" is made under the lock.

The accuracy estimator declares what it scores (nas.accuracy.scope): the space, the dimensions it
holds fixed, the resolutions, the form of the network (deployed, or the proxy a supernet trains)
and its input; the search runs over exactly those networks, and the device's latency predictor
prices each of them as that same network (exactly, in batches, from latency_models.predictor.batch). What
is asked of the estimator beyond its scope (another width, resolution or form) is refused.

Two searches run side by side from the same seed: aging evolution for the most accurate network
within the budget, and NSGA-II for the front of accuracy against latency under the same budget.
The budget is a filter around both, not code inside them. After every generation the state is
saved, so a killed search continues and ends where an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import InputError
from common.files import check_new_folder, write_atomic
from common.locks import Lock, hold
from latency_models.options import DEFAULT_PRECISION
from latency_models.predictor.batch import SpaceCost, SpaceLatency
from latency_models.profiles.registry import load_predictor
from nas.accuracy.estimator import DEFAULT_ESTIMATOR, AccuracyPredictor, estimator_path
from nas.accuracy.scope import Scope, ScopeMismatch
from nas.search.evolution import NSGA2, AgingEvolution, Budget, pareto_front
from nas.search.report import markdown, plot_front
from nas.training.evaluation import open_evaluator
from nas.training.run import Run
from search_spaces import zoo
from search_spaces.arch_spec import ArchSpec
from search_spaces.graph import count_macs, count_params
from search_spaces.mbv3 import RESOLUTIONS, MobileNetV3Space
from search_spaces.space import PinnedSpace, ProxyFormSpace

SEARCH_RESULT_KIND = "platform-nas/search-result"  # arch.json: a spec with what the search knows of it
STATE = "search-state.json"
BASELINE = "mobilenet_v2_1.0"
BASELINE_RESOLUTION = 224  # the budget's network in the deployed form: as published
NEAR_BUDGET = 0.15  # published models within this fraction of the budget are compared with the choice
SPACES = ("mbv3",)
HOST_SAMPLES, HOST_SAMPLE_SEED = 4, 0  # searched networks whose blocks the host measures on first use
RESCORE = 16  # finalists re-scored with the supernet: the best by estimate (about 3 s each on one core)


class SearchError(InputError):
    """A search that cannot run as asked: a budget below the fastest network, a saved state of
    another search, no feasible architecture."""


@dataclass(frozen=True)
class SearchSettings:
    """Everything that decides one device's search (the command line's flags, per target)."""

    target: str
    precision: str = DEFAULT_PRECISION
    space: str = "mbv3"
    estimator: str | None = None  # a bundled estimator's name or a file; None: the default (imagenet)
    resolution: int | None = None  # None: every resolution the estimator scores is searched
    width: float | None = None  # None: the estimator's, or searched where it scores several
    form: str | None = None  # "deployed" or "proxy"; None: the estimator's
    latency_ms: float | None = None  # None: the device's predicted latency of BASELINE in the same form
    population: int = 200  # with 50 generations, about 6k distinct candidates scored (about 10 s here)
    generations: int = 50
    seed: int = 0
    supernet: str | None = None  # a trained supernet's run folder: re-score the finalists on it
    resume: bool = False

    def __post_init__(self) -> None:
        checks = [
            (self.latency_ms is None or 0 < self.latency_ms < float("inf"), f"latency budget {self.latency_ms} ms"),
            (self.population >= 4, f"population {self.population} (at least 4)"),
            (self.generations >= 1, f"generations {self.generations} (at least 1)"),
        ]
        for ok, what in checks:
            if not ok:
                raise SearchError(f"{self.target}: a search cannot run with {what}")


@dataclass(frozen=True)
class SearchResult:
    """A finished search: arch.json's content, the front (accuracy against latency) and the
    published models priced on the same device."""

    arch: dict[str, Any]
    front: list[dict[str, Any]]
    baselines: list[dict[str, Any]]

    def write(self, out: Path) -> None:
        out.mkdir(parents=True, exist_ok=True)
        write_atomic(out / "arch.json", json.dumps(self.arch, indent=2) + "\n")
        pareto = {
            "kind": "platform-nas/pareto-front",
            "schema_version": 1,
            "target": self.arch["target"],
            "front": self.front,
        }
        write_atomic(out / "pareto.json", json.dumps(pareto, indent=2) + "\n")
        plot_front(out / "pareto.png", self.arch, self.front, self.baselines)
        write_atomic(out / "report.md", markdown(self.arch, self.front, self.baselines))


def published_form(name: str, scope: Scope) -> ArchSpec:
    """A published model as the networks an estimator scores are priced: as published in the
    deployed form (MobileNetV2-1.0, the default budget, at 224 px); fed the proxy's input
    (resolution, channels, classes) in the proxy form. The zoo's models have no proxy of their
    own, so their layers stay as published."""
    if scope.form == "deployed":
        return zoo.get(name, resolution=BASELINE_RESOLUTION if name == BASELINE else None)
    spec = zoo.get(name, resolution=scope.resolutions[0], num_classes=scope.classes)
    return spec.with_in_channels(scope.in_channels)


def load_estimator(settings: SearchSettings) -> tuple[AccuracyPredictor, Path]:
    """The estimator the settings name (default: the bundled ImageNet one)."""
    path = estimator_path(settings.estimator)
    return AccuracyPredictor.load(path), path


def search_space(settings: SearchSettings, estimator: AccuracyPredictor) -> PinnedSpace:
    """The networks searched: the estimator's scope, narrowed by what the settings ask (a width,
    a resolution); asking for anything outside the scope is refused, naming both."""
    scope = estimator.scope
    name = settings.estimator or DEFAULT_ESTIMATOR
    if settings.space not in SPACES:
        raise SearchError(f"no accuracy estimator for {settings.space!r} (spaces with one: {', '.join(SPACES)})")
    try:
        scope.check(settings.space, settings.width, settings.resolution, settings.form)
    except ScopeMismatch as exc:
        raise SearchError(f"estimator {name} {exc} (it scores: {scope.describe()})") from None
    pinned = dict(scope.pinned)
    if settings.width is not None:
        pinned["width"] = settings.width
    shape = {"num_classes": scope.classes, "in_channels": scope.in_channels, **scope.space_args}
    try:
        if scope.form == "proxy":  # the proxy's input is the supernet's: the resolution is no decision
            pinned["resolution"] = RESOLUTIONS[0]
            space: PinnedSpace = ProxyFormSpace(MobileNetV3Space(**shape), pinned, scope.resolutions[0])
        else:
            if settings.resolution is not None:
                pinned["resolution"] = settings.resolution
            elif len(scope.resolutions) > 1 and "resolution" not in [d["name"] for d in estimator.dimensions]:
                raise SearchError(
                    f"estimator {name} scores several resolutions but does not see them: use --resolution"
                )
            space = PinnedSpace(MobileNetV3Space(**shape, resolutions=scope.resolutions), pinned)
        estimator.encoder(space)
    except (ValueError, TypeError) as exc:  # a width or resolutions the space lacks, unknown space_args
        raise SearchError(f"estimator {name}: {exc}") from None
    return space


def host_specs(settings: SearchSettings) -> list[ArchSpec]:
    """The networks whose blocks the host measures before its first search (see
    latency_models.measurement.first_use): the budget's network and HOST_SAMPLES of the searched ones,
    in the form the search prices them."""
    estimator, _ = load_estimator(settings)
    space = search_space(settings, estimator)
    rng = np.random.default_rng(HOST_SAMPLE_SEED)
    return [published_form(BASELINE, estimator.scope)] + [
        space.materialize(space.sample(rng)) for _ in range(HOST_SAMPLES)
    ]


def check_supernet(supernet: str, space: PinnedSpace, space_name: str, scope: Scope) -> None:
    """A supernet that re-scores the finalists must be over the whole searched space, and the
    estimator must score the networks that supernet trains."""
    if scope.form != "proxy":
        raise SearchError(
            f"--supernet re-scores with a supernet's proxy networks: use an estimator fitted on it (this one "
            f"scores {scope.describe()})"
        )
    run_folder = Run.open(supernet)
    config = run_folder.config.supernet
    supernet_space = config.build_space()
    run_folder.close()
    if [(d.name, d.options) for d in supernet_space.dimensions] != [(d.name, d.options) for d in space.dimensions]:
        raise SearchError(f"{supernet}: its supernet is not over the whole {space_name} space")
    trains = (config.resolution, supernet_space.in_channels, supernet_space.num_classes)
    if trains != (scope.resolutions[0], scope.in_channels, scope.classes):
        raise SearchError(
            f"{supernet}: its supernet trains {trains[0]} px, {trains[1]} channel(s), {trains[2]} classes; the "
            f"estimator scores {scope.describe()}"
        )


class DeviceSearch:
    """Everything one device's search needs, and its two strategies."""

    def __init__(
        self, settings: SearchSettings, space: PinnedSpace, estimator: AccuracyPredictor, estimator_path: Path
    ):
        target = settings.target
        self.predictor = load_predictor(target, settings.precision)
        self.target, self.settings, self.space = target, settings, space
        # identities of the two models, hashed once: the state saved every generation names them
        self.estimator_sha256 = hashlib.sha256(estimator_path.read_bytes()).hexdigest()
        self.predictor_sha256 = hashlib.sha256(json.dumps(self.predictor.to_dict()).encode()).hexdigest()
        self.latency = SpaceLatency(self.predictor, space, settings.precision)
        self.macs, self.params = SpaceCost(space, "macs"), SpaceCost(space, "params")
        self.accuracy = estimator.scorer(space)
        self.estimator, self.estimator_path = estimator, estimator_path
        self.scope = estimator.scope
        if settings.latency_ms is not None:
            self.budget, self.budget_source = settings.latency_ms, "given with --latency-ms"
        else:
            baseline = published_form(BASELINE, self.scope)
            self.budget = self.predictor.spec_ms(baseline, settings.precision)
            scope = self.scope
            fed = (
                f"at {baseline.resolution} px"
                if scope.form == "deployed"
                else f"fed the proxy's input ({baseline.resolution} px, {scope.in_channels} channel(s), "
                f"{scope.classes} classes)"
            )
            self.budget_source = f"{BASELINE} {fed} on {target}, predicted"
        dims = space.dimensions
        self.smallest = space.check([self._smallest_option(i, d) for i, d in enumerate(dims)])
        fastest = float(self.latency(np.array([self.smallest]))[0])
        smallest_top1 = float(self.accuracy(np.array([self.smallest]))[0])
        if not (math.isfinite(fastest) and math.isfinite(smallest_top1) and math.isfinite(self.budget)):
            raise SearchError(
                f"{target}: the smallest architecture is priced {fastest} ms and scored {smallest_top1} (budget "
                f"{self.budget} ms); the estimator or the {target} profile is not usable"
            )
        if self.budget < fastest:
            raise SearchError(
                f"budget {self.budget:.2f} ms on {target} is below the fastest architecture of {settings.space} "
                f"scored by the estimator ({fastest:.2f} ms, every choice at its smallest)"
            )
        self.constraints = [Budget("latency", self.latency, self.budget)]
        common = dict(population=settings.population, seed=settings.seed, seeds=[self.smallest])
        self.evolution = AgingEvolution(space, self.accuracy, self.constraints, **common)
        self.pareto = NSGA2(space, [self.accuracy, lambda c: -self.latency(c)], self.constraints, **common)
        self.lock: Lock | None = None  # the output folder's, from `prepare` until the result is written

    def release(self) -> None:
        """Let go of the output folder's lock (done by `run_search` once the result is written)."""
        if self.lock is not None:
            self.lock.release()

    def _smallest_option(self, i, dim) -> int:
        if i in self.space.pinned:
            return self.space.pinned[i]
        return min(range(len(dim.options)), key=lambda k: dim.options[k])

    def identity(self) -> dict[str, Any]:
        """What must match for a saved search to be continued: the two models first (a search
        saved with another estimator or predictor, or another version of one, cannot continue)."""
        a = self.settings
        dims = self.space.dimensions
        return {
            "estimator_sha256": self.estimator_sha256,
            "predictor_sha256": self.predictor_sha256,
            "target": self.target,
            "precision": a.precision,
            "space": a.space,
            "form": self.scope.form,
            "pinned": {dims[i].name: dims[i].options[o] for i, o in sorted(self.space.pinned.items())},
            "budget_ms": round(self.budget, 6),
            "population": a.population,
            "seed": a.seed,
        }

    def state(self, seconds: float) -> dict[str, Any]:
        return {
            "settings": self.identity(),
            "seconds": seconds,
            "evolution": self.evolution.state(),
            "pareto": self.pareto.state(),
        }

    def load_state(self, state: dict[str, Any], where: Path) -> float:
        theirs, ours = state.get("settings", {}), self.identity()
        for key, value in ours.items():
            if key.endswith("_sha256") and theirs.get(key) != value:
                model = key.removesuffix("_sha256")
                raise SearchError(
                    f"{where}: saved with another {model} (or another version of it) than this run's; "
                    "start a new search in another --out"
                )
            if theirs.get(key) != value:
                raise SearchError(
                    f"{where}: saved with {key} {theirs.get(key)!r}, this run has {value!r}; "
                    "a resumed search (--resume) continues with its own settings"
                )
        self.evolution.load_state(state["evolution"])
        self.pareto.load_state(state["pareto"])
        scores = self.evolution.scores + [score for _, score in self.evolution.history]
        if not all(0 <= score <= 1 for score in scores):
            raise ValueError("evolution: scores must be estimated top-1 fractions in [0, 1]")
        seconds = state.get("seconds", 0.0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds < math.inf:
            raise ValueError(f"seconds: must be a finite non-negative number, got {seconds!r}")
        return float(seconds)

    # --- results -----------------------------------------------------------------------

    def describe(self, choices: list[tuple]) -> list[dict[str, Any]]:
        batch = np.array(choices)
        latency, top1 = self.latency(batch), self.accuracy(batch)
        macs, params = self.macs(batch), self.params(batch)
        mapping = self.scope.mapping
        return [
            {
                "choices": self.space.values(c),
                "predicted_latency_ms": float(latency[i]),
                "estimated_top1": float(top1[i]),
                **({"mapped_top1": float(mapping(top1[i]))} if mapping else {}),
                "macs": int(round(macs[i])),
                "params": int(round(params[i])),
                "_choices": c,
            }
            for i, c in enumerate(choices)
        ]

    def candidates(self) -> list[tuple]:
        """Every distinct feasible candidate the two searches hold: evolution's whole history
        and NSGA-II's final population."""
        return list(dict.fromkeys([c for c, _ in self.evolution.history] + self.pareto.members))

    def front(self, described: list[dict]) -> list[dict]:
        points = np.array([[d["estimated_top1"], -d["predicted_latency_ms"]] for d in described])
        front = [described[i] for i in pareto_front(points)]
        return sorted(front, key=lambda d: d["predicted_latency_ms"])

    def baselines(self) -> list[dict[str, Any]]:
        """Every published model priced on the device in the searched networks' form, with its
        published ImageNet top-1 where that is what the estimator is about."""
        scope = self.scope
        imagenet = scope.form == "deployed" and scope.classes == 1000 and scope.data.startswith("ImageNet")
        out = []
        for name in zoo.names():
            spec = published_form(name, scope)
            published = zoo.published_top1(name) if imagenet else None
            out.append(
                {
                    "name": name,
                    "resolution": spec.resolution,
                    "predicted_latency_ms": self.predictor.spec_ms(spec, self.settings.precision),
                    "macs": count_macs(spec),
                    "params": count_params(spec),
                    **({"published_top1": published[0] / 100, "top1_source": published[1]} if published else {}),
                }
            )
        return out


def rescore(described: list[dict], supernet: str, estimator) -> None:
    """Adds `supernet_top1` to each candidate: its top-1 on the trained supernet, measured as
    the estimator's training data was (same validation and recalibration images)."""
    samples = estimator.info.get("samples", {})
    run_folder = Run.open(supernet)
    trained, evaluator, _ = open_evaluator(run_folder, samples.get("calib_images", 1000))
    for d in described:
        sub = trained.layout.subnet(d["_choices"])
        d["supernet_top1"] = evaluator.top1(trained.params, sub, samples.get("val_images", 2000))
    run_folder.close()


def prepare(
    settings: SearchSettings, space: PinnedSpace, estimator: AccuracyPredictor, estimator_path: Path, out: Path
) -> tuple[DeviceSearch, float]:
    """A device's search, restored from `out` when resuming (with the seconds already spent);
    everything that can be wrong with the input is found here, before any work. `out` is locked
    first (the search holds the lock until `run_search` has written its result): a search
    already writing there is refused, naming its process."""
    lock = hold_output(out)
    try:
        search = DeviceSearch(settings, space, estimator, estimator_path)
        search.lock = lock
        state_path = out / STATE
        if settings.resume and state_path.exists():
            try:
                return search, search.load_state(json.loads(state_path.read_text()), state_path)
            except SearchError:
                raise  # a state of another search: load_state says which setting differs
            except (KeyError, TypeError, ValueError, RecursionError) as exc:  # JSON and Unicode errors are ValueErrors
                raise SearchError(f"{state_path}: cannot resume from it ({exc})") from None
        if settings.resume and (out / "arch.json").exists():
            raise SearchError(f"{out}: a search's result without its saved state ({STATE}): nothing to resume")
        if state_path.exists() or (out / "arch.json").exists():
            raise SearchError(
                f"{out} already holds a search: resume it (--resume), or choose another output folder (--out)"
            )
        check_new_folder(out, SearchError, "a new search")  # nothing the search did not write is replaced
        return search, 0.0
    except BaseException:
        lock.release()
        raise


def hold_output(out: Path) -> Lock:
    """The output folder's writer lock; a live holder is a SearchError naming it."""
    try:
        return hold(out, "search output")
    except InputError as exc:
        raise SearchError(str(exc)) from None


def run_search(
    search: DeviceSearch, spent: float, out: Path, on_generation: Callable[[DeviceSearch], None] = lambda s: None
) -> SearchResult:
    """Runs the remaining generations, saving the state in `out` after each (and calling
    `on_generation`), writes the result into `out` (`SearchResult.write`) and returns it; the
    lock `prepare` took on `out` is released at the end, whatever happens."""
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
                f"no architecture of {search.settings.space} found within {search.budget:.2f} ms on {search.target}"
            )
        result = _finish(search, round(spent + time.perf_counter() - began, 2))
        result.write(out)
        return result
    finally:
        search.release()


def prepare_searches(settings: list[SearchSettings], outs: list[Path]) -> list[tuple[DeviceSearch, float]]:
    """Every device's search ready to run, each restored from its `out` when resuming: the
    estimator, the space (shared by the devices: they differ in target only) and the supernet are
    checked once, and every input problem is found before any search runs. Each holds its
    `out`'s lock until `run_search` (or `release`); a refusal releases those taken before it."""
    estimator, path = load_estimator(settings[0])
    space = search_space(settings[0], estimator)
    if settings[0].supernet:
        check_supernet(settings[0].supernet, space, settings[0].space, estimator.scope)
    prepared: list[tuple[DeviceSearch, float]] = []
    try:
        for s, out in zip(settings, outs):
            prepared.append(prepare(s, space, estimator, path, out))
    except BaseException:
        for search, _ in prepared:
            search.release()
        raise
    return prepared


def search_device(
    settings: SearchSettings, out: Path, on_generation: Callable[[DeviceSearch], None] = lambda s: None
) -> SearchResult:
    """One device's whole search in one call, its state in `out`, and its result written there
    (arch.json, pareto.json, pareto.png and report.md) before it is returned."""
    [(search, spent)] = prepare_searches([settings], [out])
    return run_search(search, spent, out, on_generation)


def budget_search(target: str, budget_ms: float, seed: int, out: Path) -> dict[str, Any]:
    """The arch.json of one search for `target` at `budget_ms` with `seed` (the defaults
    otherwise) in `out`: read back when finished before, else run (continuing a killed one). A
    folder that holds another budget's or seed's search is refused, naming it."""
    arch_path = out / "arch.json"
    if not arch_path.exists():
        search_device(SearchSettings(target=target, latency_ms=budget_ms, seed=seed, resume=True), out)
    arch = json.loads(arch_path.read_text())
    if not np.isclose(arch["budget_ms"], budget_ms, rtol=1e-9) or arch["seed"] != seed:
        raise SearchError(f"{arch_path}: a search for {arch['budget_ms']} ms, seed {arch['seed']}; remove {out}")
    return arch


def _finish(search: DeviceSearch, seconds: float) -> SearchResult:
    settings = search.settings
    described = search.describe(search.candidates())
    for d in described:
        if not (math.isfinite(d["estimated_top1"]) and math.isfinite(d["predicted_latency_ms"])):
            # checked before anything is written: a result of NaN is no result
            raise SearchError(
                f"{search.target}: a candidate scored {d['estimated_top1']} at {d['predicted_latency_ms']} ms; "
                f"the estimator ({settings.estimator or 'default'}) or the {search.target} profile is not usable"
            )
    front = search.front(described)
    best = max(described, key=lambda d: d["estimated_top1"])
    if settings.supernet:
        finalists = sorted(described, key=lambda d: -d["estimated_top1"])[:RESCORE]
        rescore(finalists, settings.supernet, search.estimator)
        best = max(finalists, key=lambda d: (d["supernet_top1"], d["estimated_top1"]))
    spec = search.space.materialize(best["_choices"])
    spec = dataclasses.replace(spec, name=f"{settings.space}-{search.target}-{search.budget:.1f}ms")
    info = search.predictor.metadata
    scope = search.scope
    result = {
        "kind": SEARCH_RESULT_KIND,
        "schema_version": 2,
        "spec": spec.to_dict(),
        "spec_hash": spec.content_hash(),
        "space": settings.space,
        "form": scope.form,
        "choices": best["choices"],
        "resolution": spec.resolution,
        "predicted_latency_ms": best["predicted_latency_ms"],
        "estimated_top1": best["estimated_top1"],
        **({"mapped_top1": best["mapped_top1"]} if "mapped_top1" in best else {}),
        # beyond the raw scores the mapping was fitted on, its measured error does not apply
        **({"mapped_top1_extrapolated": not scope.mapping.covers(best["estimated_top1"])} if scope.mapping else {}),
        **({"supernet_top1": best["supernet_top1"]} if "supernet_top1" in best else {}),
        "macs": best["macs"],
        "params": best["params"],
        "budget_ms": search.budget,
        "budget_source": search.budget_source,
        "seed": settings.seed,
        "target": {
            "name": search.target,
            "precision": settings.precision,
            "description": info.get("description", search.target),
            "source": info.get("source", ""),
            "predictor_fitted": info.get("fitted", ""),
            "predictor_sha256": search.predictor_sha256,
        },
        "estimator": {
            "name": settings.estimator or DEFAULT_ESTIMATOR,
            "file": str(search.estimator_path),
            "sha256": search.estimator_sha256,
            "scores": scope.describe(),
            "estimated_top1_is": scope.metric,
            **({"mapped_top1_is": scope.mapping.to, "mapping": _mapping_summary(scope)} if scope.mapping else {}),
            "summary": _estimator_summary(search.estimator.info, scope),
        },
        "search": {
            "population": settings.population,
            "generations": search.evolution.generation,
            "evaluated": len(described),
            "seconds": seconds,
        },
    }
    baselines = search.baselines()
    if scope.mapping is not None:
        result["published_comparison"] = compare_published(result, baselines, scope.mapping.loo_rmse_points)
    public = [{k: v for k, v in d.items() if k != "_choices"} for d in front]
    return SearchResult(result, public, baselines)


def compare_published(result: dict[str, Any], baselines: list[dict], error_points: float) -> dict[str, Any]:
    """The published models whose predicted latency lies within NEAR_BUDGET of the budget, and
    the choice's mapped top-1 against the best of them at or under its own latency."""
    budget, latency = result["budget_ms"], result["predicted_latency_ms"]
    near = sorted(
        (
            b
            for b in baselines
            if "published_top1" in b and abs(b["predicted_latency_ms"] - budget) <= NEAR_BUDGET * budget
        ),
        key=lambda b: b["predicted_latency_ms"],
    )
    under = [b for b in near if b["predicted_latency_ms"] <= latency]
    best = max(under, key=lambda b: b["published_top1"]) if under else None
    return {
        "window": NEAR_BUDGET,
        "near_budget": near,
        "best_at_or_under": best,
        "gain_points": 100 * (result["mapped_top1"] - best["published_top1"]) if best else None,
        "error_points": error_points,
    }


def _mapping_summary(scope: Scope) -> dict[str, Any]:
    m = scope.mapping
    return {
        "slope": m.slope,
        "intercept": m.intercept,
        "leave_one_out_rmse_points": m.loo_rmse_points,
        "leave_one_out_max_points": m.loo_max_points,
        "networks": len(m.fitted_on),
        "raw_range": list(m.raw_range),
        "source": m.source,
    }


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
