"""The costs a search can bound, how each is named on the command line and shown, and which of
a choice's bounds binds. Sizes are in binary units: 1 KB = 1024 bytes, 1 MB = 1024 KB, as
microcontroller datasheets count SRAM and flash."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

KB = 1024
MB = 1024 * KB


def _bytes(value: float) -> str:
    return f"{value / MB:.2f} MB" if value >= MB else f"{value / KB:.1f} KB"


@dataclass(frozen=True)
class CostKind:
    flag: str  # the command line's flag that bounds it
    label: str  # in words, for tables and messages
    shown: Callable[[float], str]


# Cost names as footprint.Footprint and the search record name them, in the order they are shown.
COSTS: dict[str, CostKind] = {
    "latency_ms": CostKind("--latency-ms", "predicted latency", lambda v: f"{v:.2f} ms"),
    "flash_bytes": CostKind("--max-flash-kb (--max-model-mb)", "flash", _bytes),
    "arena_bytes": CostKind("--max-sram-kb", "peak SRAM (TFLM activation arena)", _bytes),
    "params": CostKind("--max-params-m", "params", lambda v: f"{v / 1e6:.2f} M"),
    "macs": CostKind("--max-macs-m", "MACs", lambda v: f"{v / 1e6:.1f} M"),
}


def shown(name: str, value: float) -> str:
    return COSTS[name].shown(value)


def binding(costs: dict[str, float], budgets: dict[str, float]) -> str | None:
    """The bound the choice comes closest to (the highest share of its budget used; on a tie,
    the first in COSTS)."""
    if not budgets:
        return None
    return max(budgets, key=lambda name: (costs[name] / budgets[name], -list(COSTS).index(name)))
