"""The one check that a value read from a file is a number: JSON lets NaN and Infinity through,
and Python's bool is an int."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def is_number(value: Any) -> bool:
    """A finite int or float (numpy's scalars included), not a bool."""
    numeric = isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_)
    return numeric and math.isfinite(value)


def all_finite(values: Any) -> bool:
    """Every entry of a number or array (of any shape) is finite."""
    return bool(np.all(np.isfinite(np.asarray(values, dtype=float))))
