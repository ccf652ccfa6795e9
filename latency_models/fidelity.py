"""How well predictions match measurements: Kendall's tau and the shares within +-5% and +-10%,
RMSPE and mean error, as `latency_models.evaluate` and the accuracy estimators report them."""

from __future__ import annotations

import numpy as np
from scipy.stats import kendalltau


def kendall_tau(a: np.ndarray, b: np.ndarray) -> float:
    """Kendall's tau-b: agreement of the orderings of two sequences (1 = same order)."""
    return float(kendalltau(a, b).statistic) if len(a) > 1 else float("nan")


def scores(predicted: np.ndarray, measured: np.ndarray) -> dict[str, float]:
    error = predicted / measured - 1
    return {
        "n": int(len(measured)),
        "within_5pct": float(np.mean(np.abs(error) <= 0.05)),
        "within_10pct": float(np.mean(np.abs(error) <= 0.10)),
        "rmspe": float(np.sqrt(np.mean(error**2))),
        "mean_error": float(np.mean(error)),
        "kendall_tau": kendall_tau(predicted, measured),
    }
