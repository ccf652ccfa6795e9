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
    # None: the device's predicted latency of preparation.BASELINE, same form; with a size bound
    # given and no latency budget, latency is not bounded
    latency_ms: float | None = None
    # bounds on size, each None when not given: flash and SRAM (TFLM's activation arena) bytes in
    # the searched deployment (precision, and int8 input and output where integer_io)
    max_flash_bytes: int | None = None
    max_sram_bytes: int | None = None
    max_params: int | None = None
    max_macs: int | None = None
    integer_io: bool = False
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
            (not self.integer_io or self.precision == "int8", "integer input and output at precision fp32"),
        ]
        checks += [
            (value is None or (not isinstance(value, bool) and isinstance(value, int) and value > 0), f"{name} {value}")
            for name, value in self.size_budgets().items()
        ]
        for ok, what in checks:
            if not ok:
                raise SearchError(f"{self.target}: a search cannot run with {what}")

    def size_budgets(self) -> dict[str, int | None]:
        """The size bounds by cost name (as footprint.Footprint and the record name them)."""
        return {
            "flash_bytes": self.max_flash_bytes,
            "arena_bytes": self.max_sram_bytes,
            "params": self.max_params,
            "macs": self.max_macs,
        }

    @property
    def latency_bounded(self) -> bool:
        """A latency budget applies: given, or by default when no size bound is given."""
        return self.latency_ms is not None or all(v is None for v in self.size_budgets().values())
