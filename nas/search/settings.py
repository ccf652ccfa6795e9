"""What decides one device's search (`SearchSettings`, the command line's flags per target) and
the checks on them; `SearchError` for a search that cannot run as asked."""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import InputError
from latency_models.options import DEFAULT_PRECISION


class SearchError(InputError):
    """A search that cannot run as asked: a budget below the fastest network, a saved state of
    another search, no feasible architecture; or a search result that cannot be read."""


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
    latency_ms: float | None = None  # None: the device's predicted latency of preparation.BASELINE, same form
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
