"""Everything one device's search needs before it runs, checked before any work: the accuracy
estimator and the networks searched (its scope, narrowed by the settings), the budget, the
device's pricing of those networks, the two strategies, the output folder's lock and, when
resuming, the saved state (`prepare`, or `prepare_searches` for several devices checked together).

The accuracy estimator declares what it scores (nas.accuracy.scope): the space, the dimensions it
holds fixed, the resolutions, the form of the network (deployed, or the proxy a supernet trains)
and its input; the search runs over exactly those networks, and the device's latency predictor
prices each of them as that same network (exactly, in batches, from latency_models.predictor.batch). What
is asked of the estimator beyond its scope (another width, resolution or form) is refused.

The output folder is locked (`common.locks`, OUT.lock beside it) from `prepare` until the result
is written (nas.search.run): a second search into it is refused (SearchError naming the holder),
and the check that it "already holds a search" is made under the lock.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from common.errors import InputError
from common.files import check_new_folder, read_json
from common.locks import Lock, hold
from common.values import all_finite
from latency_models.footprint.batch import SpaceArena, SpaceFlash
from latency_models.footprint.costs import Footprint, footprint
from latency_models.predictor.batch import SpaceCost, SpaceLatency
from latency_models.profiles.registry import load_predictor
from nas.accuracy.estimator import DEFAULT_ESTIMATOR, AccuracyPredictor, estimator_path
from nas.accuracy.scope import Scope, ScopeMismatch
from nas.search.budgets import COSTS, shown
from nas.search.evolution import NSGA2, AgingEvolution, BatchFn, Budget
from nas.search.settings import SearchError, SearchSettings
from nas.training.run import Run
from search_spaces import zoo
from search_spaces.arch_spec import ArchSpec
from search_spaces.mbv3 import RESOLUTIONS, MobileNetV3Space
from search_spaces.space import Choices, PinnedSpace, ProxyFormSpace

STATE = "search-state.json"
BASELINE = "mobilenet_v2_1.0"
BASELINE_RESOLUTION = 224  # the budget's network in the deployed form: as published
SPACES = ("mbv3",)
# The batch flash estimate lies from 1.95% under to 0.68% over the exact count
# (benchmarks/memory_fidelity.py: it counts a zero-point vector the file shares across blocks once
# per block). Kept up to this much over a flash bound, no candidate that fits is screened out;
# the exact count decides what is chosen and drawn.
FLASH_SCREEN = 0.01
AXIS_SAMPLES = 2000  # networks sampled to see which bound rejects the most
HOST_SAMPLES, HOST_SAMPLE_SEED = 4, 0  # searched networks whose blocks the host measures on first use


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
        self.target, self.settings, self.space = target, settings, space
        dims = space.dimensions
        self.smallest = space.check([self._smallest_option(i, d) for i, d in enumerate(dims)])
        self.size_budgets = {name: limit for name, limit in settings.size_budgets().items() if limit is not None}
        self._footprints: dict[Choices, Footprint] = {}
        if self.size_budgets:  # checked first: a bound no network meets is refused before any pricing
            least = self.footprint(self.smallest)
            for name, limit in self.size_budgets.items():
                if limit < getattr(least, name):
                    deployed = f" {least.deployment}" if name in ("flash_bytes", "arena_bytes") else ""
                    raise SearchError(
                        f"{COSTS[name].flag} {shown(name, limit)} is below the smallest architecture of "
                        f"{settings.space} scored by the estimator ({shown(name, getattr(least, name))}{deployed}, "
                        "every choice at its smallest)"
                    )
        self.predictor = load_predictor(target, settings.precision)
        # identities of the two models, hashed once: the state saved every generation names them
        self.estimator_sha256 = hashlib.sha256(estimator_path.read_bytes()).hexdigest()
        self.predictor_sha256 = hashlib.sha256(json.dumps(self.predictor.to_dict()).encode()).hexdigest()
        self.latency = SpaceLatency(self.predictor, space, settings.precision)
        self.macs, self.params = SpaceCost(space, "macs"), SpaceCost(space, "params")
        deployment = (settings.precision, settings.integer_io)
        self.accuracy = estimator.scorer(space)
        self.estimator, self.estimator_path = estimator, estimator_path
        self.scope = estimator.scope
        self.budget: float | None = None
        self.budget_source: str | None = None
        if settings.latency_ms is not None:
            self.budget, self.budget_source = settings.latency_ms, "given with --latency-ms"
        elif settings.latency_bounded:
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
        fastest = float(self.latency(np.array([self.smallest]))[0])
        smallest_top1 = float(self.accuracy(np.array([self.smallest]))[0])
        if not all_finite([fastest, smallest_top1, self.budget or 0.0]):
            raise SearchError(
                f"{target}: the smallest architecture is priced {fastest} ms and scored {smallest_top1} (budget "
                f"{self.budget} ms); the estimator or the {target} profile is not usable"
            )
        if self.budget is not None and self.budget < fastest:
            raise SearchError(
                f"budget {self.budget:.2f} ms on {target} is below the fastest architecture of {settings.space} "
                f"scored by the estimator ({fastest:.2f} ms, every choice at its smallest)"
            )
        # flash and the arena are priced only when bounded: their tables take seconds to build
        self.flash = SpaceFlash(space, *deployment) if "flash_bytes" in self.size_budgets else None
        self.arena = SpaceArena(space, *deployment) if "arena_bytes" in self.size_budgets else None
        self.metrics: dict[str, BatchFn] = {"latency_ms": self.latency, "params": self.params, "macs": self.macs}
        self.metrics.update({k: m for k, m in (("flash_bytes", self.flash), ("arena_bytes", self.arena)) if m})
        self.constraints = [Budget("latency_ms", self.latency, self.budget)] if self.budget is not None else []
        for name, limit in self.size_budgets.items():
            # the batch flash is an estimate (within FLASH_SCREEN): what it keeps is checked exactly
            screen = limit * (1 + FLASH_SCREEN) if name == "flash_bytes" else limit
            self.constraints.append(Budget(name, self.metrics[name], screen))
        self.axis = self._front_axis()
        common = dict(population=settings.population, seed=settings.seed, seeds=[self.smallest])
        self.evolution = AgingEvolution(space, self.accuracy, self.constraints, **common)
        axis = self.metrics[self.axis]
        self.pareto = NSGA2(space, [self.accuracy, lambda c: -axis(c)], self.constraints, **common)
        self.lock: Lock | None = None  # the output folder's, from `prepare` until the result is written

    def release(self) -> None:
        """Let go of the output folder's lock (done by `run_search` once the result is written)."""
        if self.lock is not None:
            self.lock.release()

    @property
    def budgets(self) -> dict[str, float]:
        """Every bound of this search by cost name, latency first."""
        return ({"latency_ms": self.budget} if self.budget is not None else {}) | self.size_budgets

    def footprint(self, choices: Choices) -> Footprint:
        """The network's exact flash and arena in the searched deployment (cached)."""
        if choices not in self._footprints:
            spec = self.space.materialize(choices)
            self._footprints[choices] = footprint(spec, self.settings.precision, self.settings.integer_io)
        return self._footprints[choices]

    def fits(self, choices: Choices) -> bool:
        """Within every size bound by the exact count (the batch metrics screen; this decides)."""
        if not {"flash_bytes", "arena_bytes"} & set(self.size_budgets):
            return True  # params and MACs are exact in the batch already
        exact = self.footprint(choices)
        return all(getattr(exact, name) <= limit for name, limit in self.size_budgets.items())

    def _front_axis(self) -> str:
        """The cost NSGA-II's front is drawn against: the bound that rejects the most networks of
        the space (sampled from the search's seed), so the one likely to bind; latency without a
        bound on anything."""
        if not self.budgets:
            return "latency_ms"
        rng = np.random.default_rng(self.settings.seed)
        sample = np.array([self.space.sample(rng) for _ in range(AXIS_SAMPLES)])
        rejected = {name: float(np.mean(self.metrics[name](sample) > limit)) for name, limit in self.budgets.items()}
        return max(rejected, key=lambda name: (rejected[name], -list(COSTS).index(name)))

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
            "budget_ms": None if self.budget is None else round(self.budget, 6),
            # written only where they apply, so a state saved before they existed still resumes
            **({"size_budgets": self.size_budgets} if self.size_budgets else {}),
            **({"integer_io": True} if a.integer_io else {}),
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
            state = read_json(state_path, SearchError, "a search state")
            try:
                return search, search.load_state(state, state_path)
            except SearchError:
                raise  # a state of another search: load_state says which setting differs
            except (KeyError, TypeError, ValueError) as exc:
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
