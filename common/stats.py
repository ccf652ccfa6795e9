"""Rank agreement, as every fidelity report of the project gives it (latency predictors,
accuracy estimators, the supernet's ranking)."""

from __future__ import annotations

from collections.abc import Sequence

from scipy.stats import kendalltau


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b: agreement of the orderings of two sequences (1 = same order); NaN for
    fewer than two items."""
    return float(kendalltau(a, b).statistic) if len(a) > 1 else float("nan")
