"""What one device's search produces, typed: a `SearchRecord` (the choice and its spec, its costs
against the latency budget and where that budget comes from, its accuracy with the form scored and
any mapping onto a published scale with that mapping's error, the published models it is compared
with, the front, the provenance of both models, the seed and the work done). arch.json and
pareto.json are its `to_dict` and `pareto_dict`; `from_dict` and `load` read arch.json back.

arch.json is read by people and other programs, so its keys stay as they are; schema 3 added the
size bounds, which bound binds and the choice's footprint in every deployment, and lets a search
bound only size (budget_ms null). Older files still read: an arch.json of schema 1 (written
before estimators declared what they score) leaves what it did not say (the form, the
estimator's name, what it scores and what its number is) None, and schema 1 and 2 have no size
bounds and no footprint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.files import read_json
from latency_models.footprint.costs import Footprint
from nas.search.settings import SearchError
from search_spaces.arch_spec import ArchSpec, SpecError

SEARCH_RESULT_KIND = "platform-nas/search-result"  # arch.json: a spec with what the search knows of it
SCHEMA_VERSION = 3
READABLE_VERSIONS = (1, 2, SCHEMA_VERSION)
PARETO_KIND = "platform-nas/pareto-front"
PARETO_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Choice:
    """The network chosen: its spec (named for the search) and the values of the space's
    dimensions that make it."""

    spec: ArchSpec
    spec_hash: str
    space: str
    choices: dict[str, Any]  # dimension name -> value, e.g. {"width": 1.2, "resolution": 192, ...}

    @property
    def resolution(self) -> int:
        return self.spec.resolution


@dataclass(frozen=True)
class LatencyBudget:
    ms: float
    source: str  # how it was set: given with --latency-ms, or a published network's predicted latency


@dataclass(frozen=True)
class Costs:
    """The choice's costs: latency as predicted on the target, MACs, params, and its footprint
    (flash, TFLM's arena, MCUNet's peak) in every deployment (none in a schema 1 or 2 file)."""

    latency_ms: float
    macs: int
    params: int
    footprints: tuple[Footprint, ...] = ()

    def of(self, precision: str, integer_io: bool = False) -> Footprint | None:
        return _deployed(self.footprints, precision, integer_io)

    def by_name(self, precision: str, integer_io: bool = False) -> dict[str, float]:
        """Every cost a bound can name (nas.search.budgets.COSTS), in that deployment."""
        return _by_name(self, precision, integer_io)


@dataclass(frozen=True)
class MappingSummary:
    """The estimator's mapping of its raw score onto a published scale (mapped = slope * raw +
    intercept), and its error on the networks it was fitted on, each left out in turn."""

    slope: float
    intercept: float
    leave_one_out_rmse_points: float
    leave_one_out_max_points: float
    networks: int
    raw_range: tuple[float, float]  # the raw scores it was fitted over: outside them it extrapolates
    source: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "slope": self.slope,
            "intercept": self.intercept,
            "leave_one_out_rmse_points": self.leave_one_out_rmse_points,
            "leave_one_out_max_points": self.leave_one_out_max_points,
            "networks": self.networks,
            "raw_range": list(self.raw_range),
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MappingSummary:
        low, high = data["raw_range"]
        return cls(
            float(data["slope"]),
            float(data["intercept"]),
            float(data["leave_one_out_rmse_points"]),
            float(data["leave_one_out_max_points"]),
            int(data["networks"]),
            (float(low), float(high)),
            str(data["source"]),
        )


@dataclass(frozen=True)
class MappedTop1:
    """The raw estimate mapped onto a published scale (e.g. ImageNet top-1 after fine-tuning)."""

    top1: float
    extrapolated: bool  # the raw score lies outside the mapping's raw_range: its error does not apply
    top1_is: str  # what the mapped number is
    mapping: MappingSummary

    @property
    def error_points(self) -> float:
        return self.mapping.leave_one_out_rmse_points


@dataclass(frozen=True)
class Accuracy:
    """The choice's accuracy as the estimator scores it, in the form it scores (the network
    deployed, or the proxy a supernet trains), mapped where the estimator maps, and measured on
    the supernet where the finalists were re-scored."""

    form: str | None  # "deployed" or "proxy"; None: a schema-1 file, which did not say
    estimated_top1: float
    estimated_top1_is: str | None  # what the raw estimate is, in words (None: schema 1)
    mapped: MappedTop1 | None = None
    supernet_top1: float | None = None


@dataclass(frozen=True)
class Target:
    """The device and the latency predictor that priced the search, and the deployment searched
    (int8 with integer input and output where `integer_io`)."""

    name: str
    precision: str
    description: str
    source: str
    predictor_fitted: str
    predictor_sha256: str
    integer_io: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "precision": self.precision,
            "description": self.description,
            "source": self.source,
            "predictor_fitted": self.predictor_fitted,
            "predictor_sha256": self.predictor_sha256,
            "integer_io": self.integer_io,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        texts = [str(data[key]) for key in list(cls.__dataclass_fields__)[:-1]]
        return cls(*texts, integer_io=_flag(data.get("integer_io", False), "integer_io"))


@dataclass(frozen=True)
class Budgets:
    """What bounded the search: the latency budget (None where only size was bounded), the size
    bounds given (flash and arena bytes in the searched deployment, params, MACs), and which of
    them the choice comes closest to (`binding`; None in a schema 1 or 2 file)."""

    latency: LatencyBudget | None
    sizes: dict[str, int]
    binding: str | None

    @property
    def all(self) -> dict[str, float]:
        return ({"latency_ms": self.latency.ms} if self.latency else {}) | self.sizes


@dataclass(frozen=True)
class Estimator:
    """Which accuracy estimator scored the search (the file and its hash), what it scores and a
    line on how it was made."""

    name: str | None  # a bundled estimator's name or the file given (None: schema 1)
    file: str
    sha256: str
    scores: str | None  # the networks it scores, in words (None: schema 1)
    summary: str


@dataclass(frozen=True)
class Candidate:
    """A searched network priced and scored: a point of the front."""

    choices: dict[str, Any]
    latency_ms: float
    estimated_top1: float
    mapped_top1: float | None
    macs: int
    params: int
    supernet_top1: float | None = None  # where it was among the finalists re-scored on the supernet
    # exact, in the searched deployment, where the search bounds or draws its front against them
    flash_bytes: int | None = None
    arena_bytes: int | None = None

    def cost(self, name: str) -> float:
        return getattr(self, name)

    def to_dict(self) -> dict[str, Any]:
        sizes = {k: getattr(self, k) for k in ("flash_bytes", "arena_bytes") if getattr(self, k) is not None}
        return {
            "choices": self.choices,
            "predicted_latency_ms": self.latency_ms,
            "estimated_top1": self.estimated_top1,
            **({"mapped_top1": self.mapped_top1} if self.mapped_top1 is not None else {}),
            "macs": self.macs,
            "params": self.params,
            **sizes,
            **({"supernet_top1": self.supernet_top1} if self.supernet_top1 is not None else {}),
        }


@dataclass(frozen=True)
class PublishedModel:
    """A zoo model priced on the same device in the searched networks' form, with its published
    top-1 where the estimator is about that (ImageNet, deployed)."""

    name: str
    resolution: int
    latency_ms: float
    macs: int
    params: int
    published_top1: float | None = None
    top1_source: str | None = None
    footprints: tuple[Footprint, ...] = ()  # fp32, int8 and the deployment searched

    def of(self, precision: str, integer_io: bool = False) -> Footprint | None:
        return _deployed(self.footprints, precision, integer_io)

    def by_name(self, precision: str, integer_io: bool = False) -> dict[str, float]:
        """Every cost a bound can name, in that deployment (sizes only where priced)."""
        return _by_name(self, precision, integer_io)

    def to_dict(self) -> dict[str, Any]:
        published = {"published_top1": self.published_top1, "top1_source": self.top1_source}
        return {
            "name": self.name,
            "resolution": self.resolution,
            "predicted_latency_ms": self.latency_ms,
            "macs": self.macs,
            "params": self.params,
            **(published if self.published_top1 is not None else {}),
            **({"footprint": [f.to_dict() for f in self.footprints]} if self.footprints else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PublishedModel:
        published = data.get("published_top1")
        return cls(
            str(data["name"]),
            int(data["resolution"]),
            float(data["predicted_latency_ms"]),
            int(data["macs"]),
            int(data["params"]),
            None if published is None else float(published),
            None if published is None else str(data["top1_source"]),
            tuple(Footprint.from_dict(f) for f in data.get("footprint", [])),
        )


@dataclass(frozen=True)
class PublishedComparison:
    """The published models predicted within `window` of the budget, and the choice's mapped top-1
    against the best of them at or under its latency (gain and the mapping's error in points)."""

    window: float  # a fraction of the budget
    near_budget: tuple[PublishedModel, ...]
    best_at_or_under: PublishedModel | None
    gain_points: float | None
    error_points: float

    def to_dict(self) -> dict[str, Any]:
        best = self.best_at_or_under
        return {
            "window": self.window,
            "near_budget": [b.to_dict() for b in self.near_budget],
            "best_at_or_under": best.to_dict() if best else None,
            "gain_points": self.gain_points,
            "error_points": self.error_points,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PublishedComparison:
        best, gain = data["best_at_or_under"], data["gain_points"]
        return cls(
            float(data["window"]),
            tuple(PublishedModel.from_dict(b) for b in data["near_budget"]),
            PublishedModel.from_dict(best) if best is not None else None,
            float(gain) if gain is not None else None,
            float(data["error_points"]),
        )


@dataclass(frozen=True)
class Effort:
    """The work the search did: its population and generations, the distinct candidates scored,
    and the seconds it took (the one field that differs between two runs of the same search)."""

    population: int
    generations: int
    evaluated: int
    seconds: float


@dataclass(frozen=True)
class SearchRecord:
    """One device's search, as arch.json (and pareto.json) hold it. `front` and `published` are
    what the search found beside the choice: the front is written to pareto.json, the published
    models priced alike to the plot and report.md; neither is in arch.json, so a record read
    from it has both empty."""

    choice: Choice
    costs: Costs
    budgets: Budgets
    accuracy: Accuracy
    seed: int
    target: Target
    estimator: Estimator
    effort: Effort
    comparison: PublishedComparison | None = None  # where the estimator maps onto published top-1
    front: tuple[Candidate, ...] = ()
    published: tuple[PublishedModel, ...] = ()
    axis: str = "latency_ms"  # the cost the front is drawn against

    def to_dict(self) -> dict[str, Any]:
        """arch.json: its keys and their order as written since schema 2."""
        accuracy, mapped, estimator = self.accuracy, self.accuracy.mapped, self.estimator
        out = {
            "kind": SEARCH_RESULT_KIND,
            "schema_version": SCHEMA_VERSION,
            "spec": self.choice.spec.to_dict(),
            "spec_hash": self.choice.spec_hash,
            "space": self.choice.space,
            "form": accuracy.form,
            "choices": self.choice.choices,
            "resolution": self.choice.resolution,
            "predicted_latency_ms": self.costs.latency_ms,
            "estimated_top1": accuracy.estimated_top1,
            **({"mapped_top1": mapped.top1, "mapped_top1_extrapolated": mapped.extrapolated} if mapped else {}),
            **({"supernet_top1": accuracy.supernet_top1} if accuracy.supernet_top1 is not None else {}),
            "macs": self.costs.macs,
            "params": self.costs.params,
            "footprint": [f.to_dict() for f in self.costs.footprints],
            "budget_ms": self.budgets.latency.ms if self.budgets.latency else None,
            "budget_source": self.budgets.latency.source if self.budgets.latency else None,
            "size_budgets": self.budgets.sizes,
            "binding": self.budgets.binding,
            "seed": self.seed,
            "target": self.target.to_dict(),
            "estimator": {
                "name": estimator.name,
                "file": estimator.file,
                "sha256": estimator.sha256,
                "scores": estimator.scores,
                "estimated_top1_is": accuracy.estimated_top1_is,
                **({"mapped_top1_is": mapped.top1_is, "mapping": mapped.mapping.to_dict()} if mapped else {}),
                "summary": estimator.summary,
            },
            "search": {
                "population": self.effort.population,
                "generations": self.effort.generations,
                "evaluated": self.effort.evaluated,
                "seconds": self.effort.seconds,
            },
        }
        if self.comparison is not None:
            out["published_comparison"] = self.comparison.to_dict()
        return out

    def pareto_dict(self) -> dict[str, Any]:
        """pareto.json: the front, accuracy against `axis` (a cost name), cheapest first."""
        return {
            "kind": PARETO_KIND,
            "schema_version": PARETO_SCHEMA_VERSION,
            "target": self.target.to_dict(),
            "axis": self.axis,
            "front": [point.to_dict() for point in self.front],
        }

    @classmethod
    def from_dict(cls, data: Any, origin: str = "search result") -> SearchRecord:
        """The record an arch.json holds (schema 1 or 2); SearchError naming `origin` when it is
        not one or is malformed."""
        if not isinstance(data, dict) or data.get("kind") != SEARCH_RESULT_KIND:
            raise SearchError(f"{origin}: not a search result (kind {SEARCH_RESULT_KIND!r} expected)")
        version = data.get("schema_version")
        if version not in READABLE_VERSIONS:
            raise SearchError(f"{origin}: schema_version {version!r}, this program reads {READABLE_VERSIONS}")
        try:
            return _record(data)
        except SpecError as exc:
            raise SearchError(f"{origin}: {exc}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise SearchError(f"{origin}: malformed ({type(exc).__name__}: {exc})") from None

    @classmethod
    def load(cls, path: str | Path) -> SearchRecord:
        """The record in an arch.json file (without the front and published models, which it does
        not hold)."""
        return cls.from_dict(read_json(path, SearchError), str(path))


def _record(data: dict[str, Any]) -> SearchRecord:
    estimator = data["estimator"]
    mapped = None
    if "mapped_top1" in data:
        mapped = MappedTop1(
            float(data["mapped_top1"]),
            bool(data["mapped_top1_extrapolated"]),
            str(estimator["mapped_top1_is"]),
            MappingSummary.from_dict(estimator["mapping"]),
        )
    supernet_top1 = data.get("supernet_top1")
    search = data["search"]
    comparison = data.get("published_comparison")
    return SearchRecord(
        choice=Choice(
            ArchSpec.from_dict(data["spec"]), str(data["spec_hash"]), str(data["space"]), dict(data["choices"])
        ),
        costs=Costs(
            float(data["predicted_latency_ms"]),
            int(data["macs"]),
            int(data["params"]),
            tuple(Footprint.from_dict(f) for f in data.get("footprint", [])),
        ),
        budgets=Budgets(
            None if data["budget_ms"] is None else LatencyBudget(float(data["budget_ms"]), str(data["budget_source"])),
            {str(name): int(limit) for name, limit in data.get("size_budgets", {}).items()},
            None if data.get("binding") is None else str(data["binding"]),
        ),
        accuracy=Accuracy(
            data.get("form"),  # schema 1 did not say
            float(data["estimated_top1"]),
            estimator.get("estimated_top1_is"),
            mapped,
            None if supernet_top1 is None else float(supernet_top1),
        ),
        seed=int(data["seed"]),
        target=Target.from_dict(data["target"]),
        estimator=Estimator(
            estimator.get("name"),  # schema 1 did not say
            str(estimator["file"]),
            str(estimator["sha256"]),
            estimator.get("scores"),
            str(estimator["summary"]),
        ),
        effort=Effort(
            int(search["population"]), int(search["generations"]), int(search["evaluated"]), float(search["seconds"])
        ),
        comparison=PublishedComparison.from_dict(comparison) if comparison is not None else None,
    )


def _flag(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name}: expected true or false, got {value!r}")
    return value


def _deployed(footprints: tuple[Footprint, ...], precision: str, integer_io: bool) -> Footprint | None:
    return next((f for f in footprints if (f.precision, f.integer_io) == (precision, integer_io)), None)


def _by_name(priced: Costs | PublishedModel, precision: str, integer_io: bool) -> dict[str, float]:
    exact = _deployed(priced.footprints, precision, integer_io)
    sizes = {"flash_bytes": exact.flash_bytes, "arena_bytes": exact.arena_bytes} if exact else {}
    return {"latency_ms": priced.latency_ms, "params": priced.params, "macs": priced.macs, **sizes}
